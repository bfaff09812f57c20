"""The event socket dialling route: FreeSWITCH rings the user, then dials the number (``bgapi originate``).

``bgapi originate {vars}<dial_endpoint> <number> <dial_dialplan> <dial_context>``:
the switch rings the user's phone (``user/<extension>`` by default) and,
once they answer, sends the call to the dialplan at ``<number>`` as if the
user had dialled it. ``origination_uuid`` is a UUID that carries the dial's
id (``gateway.sources.esl.events.dial_uuid``), so the call's
``Channel-Call-UUID`` names the dial and every event of the call joins it
exactly (``match_seconds`` 0). The job's result (``BACKGROUND_JOB``) says
whether the user's phone answered (``+OK <uuid>``) or not (``-ERR <cause>``):
then the dial ends (CANCELED: busy, no answer, rang out, declined; FAILED: anything else).
docs/pbx.md#click-to-dial.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from gateway.dial.pbxroute import PbxDialler, dialled_as
from gateway.dial.routes import DialPlan
from gateway.model import EndStatus
from gateway.sources.esl.client import EslConnection
from gateway.sources.esl.events import dial_uuid
from gateway.sources.esl.protocol import Frame, reply_ok

log = logging.getLogger("gateway.dial.esl")

# The user's phone did not take the call: they did not, rather than it failed.
# ALLOTTED_TIMEOUT is how the switch reports the originate_timeout (or a
# leg_timeout in dial_endpoint) running out while the phone rang.
NOT_TAKEN = frozenset(
    {"USER_BUSY", "NO_ANSWER", "NO_USER_RESPONSE", "ALLOTTED_TIMEOUT", "ORIGINATOR_CANCEL", "CALL_REJECTED"}
)


class EslDialler(PbxDialler[EslConnection, str, str, Frame]):
    name = "esl"
    match_seconds = 0.0  # the call's Channel-Call-UUID names the dial
    link = "event socket"
    peer = "the switch"
    log = log

    def command(self, plan: DialPlan, extension: str, connection: EslConnection) -> str:
        pbx = connection.pbx
        # The user's phone shows whom it is about to call; the far end is
        # shown the caller id the dial chose, or, without one, the one the
        # dialplan gives it.
        chosen = [] if plan.caller_id is None else [f"effective_caller_id_number={plan.caller_id}"]
        variables = ",".join(
            [
                f"origination_uuid={dial_uuid(plan.call_id)}",
                f"origination_caller_id_number={plan.target}",
                f"origination_caller_id_name={plan.target}",
                *chosen,
                f"originate_timeout={int(pbx.ring_seconds)}",
                "ignore_early_media=true",
            ]
        )
        endpoint = pbx.dial_endpoint.replace("{extension}", extension)
        number = dialled_as(plan.target, pbx.dial_number)
        return f"originate {{{variables}}}{endpoint} {number} {pbx.dial_dialplan} {pbx.dial_context}"

    def request(self, plan: DialPlan, extension: str, connection: EslConnection) -> tuple[str, str]:
        return self.command(plan, extension, connection), dial_uuid(plan.call_id)

    async def send(
        self, connection: EslConnection, request: str, on_result: Callable[[str], Awaitable[None]]
    ) -> Frame:
        return await connection.bgapi(request, on_result, self.accept_seconds)

    def refused(self, answer: Frame) -> str | None:
        return None if reply_ok(answer) else answer.get("reply-text") or "no reason"

    async def result(self, plan: DialPlan, result: str) -> None:
        if result.startswith("+OK"):
            return  # the user answered; the call's own events tell the rest
        cause = result.removeprefix("-ERR").strip().upper()
        status = EndStatus.CANCELED if cause in NOT_TAKEN else EndStatus.FAILED
        log.info(
            "esl dial %s: the user's phone did not take the call (%s)", plan.call_key, cause or result[:40]
        )
        await self.end(plan, status)
