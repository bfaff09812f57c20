"""The AMI dialling route: Asterisk rings the user's extension, then dials the number (``Originate``).

One ``Originate`` action (``Async: true``) on the tenant's AMI connection:
``Channel: Local/<extension>@<dial_context>`` rings the user's own phone
through the dialplan (so their ring group, follow-me and device settings
apply); once they answer, the call continues at ``Exten: <number>`` in the
same context, i.e. as if the user had dialled it (their outbound route,
caller id and trunk). ``ChannelId: gwdial-<dial id>`` makes the call's
``Linkedid`` name the dial, so every AMI event of the call joins the dialled
call exactly (``match_seconds`` 0). ``OriginateResponse`` says whether the
user's phone answered; when it did not, the dial ends (CANCELED: the user
did not take their own call; FAILED: the PBX could not ring it).
docs/pbx.md#click-to-dial.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from gateway.dial.pbxroute import PbxDialler, dialled_as
from gateway.dial.routes import DialPlan
from gateway.model import EndStatus
from gateway.sources.ami.client import AmiConnection
from gateway.sources.ami.events import DIAL_PREFIX
from gateway.sources.ami.protocol import Message, is_success

log = logging.getLogger("gateway.dial.ami")

# OriginateResponse Reason (Asterisk's control frame numbers): what the user's phone did.
REASON_STATUS = {
    "0": EndStatus.FAILED,
    "1": EndStatus.CANCELED,
    "3": EndStatus.CANCELED,
    "5": EndStatus.CANCELED,
    "8": EndStatus.FAILED,
}


class AmiDialler(PbxDialler[AmiConnection, dict[str, str], Message, Message]):
    name = "ami"
    match_seconds = 0.0  # the call's Linkedid names the dial
    link = "AMI connection"
    peer = "the PBX"
    log = log

    def fields(self, plan: DialPlan, extension: str, connection: AmiConnection) -> dict[str, str]:
        pbx = connection.pbx
        return {
            "Channel": f"Local/{extension}@{pbx.dial_context}",
            "Context": pbx.dial_context,
            "Exten": dialled_as(plan.target, pbx.dial_number),
            "Priority": "1",
            # The user's phone shows whom it is about to call; the number is
            # the caller id the dial chose for the far end. Without one, the
            # name alone: the dialplan gives the far end its own.
            "CallerID": f'"{plan.target}"' + (f" <{plan.caller_id}>" if plan.caller_id else ""),
            "Timeout": str(int(pbx.ring_seconds * 1000)),
            "ChannelId": f"{DIAL_PREFIX}{plan.call_id}",
            "OtherChannelId": f"{DIAL_PREFIX}{plan.call_id}-2",
        }

    def request(
        self, plan: DialPlan, extension: str, connection: AmiConnection
    ) -> tuple[dict[str, str], str]:
        fields = self.fields(plan, extension, connection)
        return fields, fields["ChannelId"]

    async def send(
        self,
        connection: AmiConnection,
        request: dict[str, str],
        on_result: Callable[[Message], Awaitable[None]],
    ) -> Message:
        return await connection.originate(request, on_result, self.accept_seconds)

    def refused(self, answer: Message) -> str | None:
        return None if is_success(answer) else answer.get("message") or "no reason given"

    async def result(self, plan: DialPlan, result: Message) -> None:
        if result.get("response").lower() == "success":
            return  # the user answered; the call's own events tell the rest
        status = REASON_STATUS.get(result.get("reason"), EndStatus.FAILED)
        log.info(
            "ami dial %s: the user's phone did not take the call (reason %s)",
            plan.call_key,
            result.get("reason"),
        )
        await self.end(plan, status)
