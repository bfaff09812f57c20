"""The Telnyx route: Call Control dials the user, then transfers them to the number on answer.

``POST /v2/calls`` (Bearer API key) dials the user's phone through the
Call Control application (``connection_id``) with our tag in
``client_state``, which Telnyx echoes, base64, in every webhook of the leg.
When the gateway's Telnyx webhook receiver sees that leg's
``call.answered``, it calls ``connect``: ``POST
/v2/calls/{call_control_id}/actions/transfer`` to the target, with the
user's caller id and the target leg's tag. Commands carry a ``command_id``
so a redelivered ``call.answered`` transfers once. A refused transfer ends
the dialled call FAILED and hangs up the user's phone.
docs/dialling.md#telnyx.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from gateway.dial import cpaas
from gateway.dial.routes import DialPlan, DialRefused, Placed
from gateway.model import Direction, EndStatus, Phase, Signal
from gateway.sources.webhooks import dialled
from gateway.sources.webhooks.common import DialTag
from gateway.sources.webhooks.receiver import UserAnswered
from gateway.tracker import BrokerUnavailable, CallTracker, Conflict
from gateway.users.directory import Directory

log = logging.getLogger("gateway.dial")

CREDENTIALS = "GATEWAY_TELNYX_API_KEY and GATEWAY_TELNYX_CONNECTION_ID"


def _detail(body: Any) -> str | None:
    # Telnyx's error body: {"errors": [{"code": "10015", "title": "...", "detail": "..."}]}
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        text = first.get("detail") or first.get("title")
        return str(text) if text else None
    return None


class TelnyxDialler(cpaas.RingsUserNumber):
    name = "telnyx"
    match_seconds = 0.0  # every webhook of both legs carries the dial's tag
    ring_seconds = cpaas.RING_SECONDS

    def __init__(
        self,
        api_key: str,
        connection_id: str,
        api_url: str,
        webhook_url: str,
        directory: Callable[[], Directory],
        tracker: CallTracker,
        timeout_seconds: float,
    ) -> None:
        self._auth = f"Bearer {api_key}"
        self._connection_id = connection_id
        self._api = f"{api_url}/v2/calls"
        self._webhook_url = webhook_url
        self._directory = directory
        self._tracker = tracker
        self._http = cpaas.client(timeout_seconds)

    async def _post(self, url: str, body: dict[str, Any]) -> Any:
        request = self._http.build_request("POST", url, json=body, headers={"authorization": self._auth})
        return await cpaas.send(self._http, "Telnyx", request, _detail, CREDENTIALS)

    async def place(self, plan: DialPlan) -> Placed:
        body = await self._post(
            self._api,
            {
                "connection_id": self._connection_id,
                "to": cpaas.user_phone(self._directory(), plan),
                "from": plan.presented(),
                "client_state": dialled.client_state(DialTag(plan.call_id, dialled.USER_LEG)),
                "command_id": f"dial-{plan.call_id}",
                "timeout_secs": cpaas.USER_RING_SECONDS,
                "webhook_url": self._webhook_url,
            },
        )
        data = body.get("data") if isinstance(body, dict) else None
        reference = data.get("call_control_id") if isinstance(data, dict) else None
        if not isinstance(reference, str):
            raise DialRefused.by_route("Telnyx accepted the call but named no call_control_id")
        return Placed(reference=reference)

    async def connect(self, answered: UserAnswered) -> None:
        """The user picked up: transfer their leg to the target (the receiver's answer handler).

        A dial that had already ended (its create-call request answered too
        late, say) is not placed after all: the user's phone is hung up.
        """
        leg = quote(answered.control_id, safe="")
        if answered.over:
            log.info("telnyx dial %s had ended when the user answered: hanging up", answered.tag.call_id)
            await self._hang_up(leg, answered)
            return
        try:
            await self._post(
                f"{self._api}/{leg}/actions/transfer",
                {
                    "to": answered.target,
                    "from": answered.caller_id,
                    "client_state": dialled.client_state(DialTag(answered.tag.call_id, dialled.TARGET_LEG)),
                    "command_id": f"connect-{answered.tag.call_id}",
                    "webhook_url": self._webhook_url,
                },
            )
        except DialRefused as exc:
            log.warning("telnyx transfer of dial %s refused: %s", answered.tag.call_id, exc.refusal.message)
            await self._fail(answered)
            await self._hang_up(leg, answered)

    async def _hang_up(self, leg: str, answered: UserAnswered) -> None:
        """Hang up the user's leg (``leg``: its call_control_id, quoted for the path)."""
        try:
            await self._post(
                f"{self._api}/{leg}/actions/hangup", {"command_id": f"hangup-{answered.tag.call_id}"}
            )
        except DialRefused as again:
            log.warning("telnyx hangup of dial %s refused: %s", answered.tag.call_id, again)

    async def _fail(self, answered: UserAnswered) -> None:
        signal = Signal(
            source="dial",
            call_id=answered.tag.call_id,
            user_id=answered.user_id,
            direction=Direction.OUTBOUND,
            phase=Phase.ENDED,
            at_ms=int(time.time() * 1000),
            from_number=answered.caller_id,
            to_number=answered.target,
            end_status=EndStatus.FAILED,
        )
        try:
            await self._tracker.observe(signal)
        except (BrokerUnavailable, Conflict) as exc:
            log.warning("dial %s could not be ended FAILED: %s", answered.tag.call_id, exc)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self._http.aclose()
