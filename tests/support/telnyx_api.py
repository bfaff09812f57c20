"""A local stand-in of Telnyx Call Control v2: dial, transfer, hangup, and the call's webhooks.

Follows Telnyx's API reference for Call Control: ``POST /v2/calls`` (dial:
``connection_id``, ``to``, ``from``, ``client_state`` base64, optional
``command_id``, ``timeout_secs``, ``webhook_url``; ``Authorization: Bearer
<API key>``; 200 with ``data.call_control_id``, ``call_leg_id``,
``call_session_id``), ``POST /v2/calls/{call_control_id}/actions/transfer``
(``to``, ``from``, ``client_state``, ``command_id``: a new leg, whose
webhooks carry the transfer's ``client_state``; a transfer that fails
sends ``call.hangup`` for that leg and leaves the original call up) and
``.../actions/hangup``; errors as ``{"errors": [{"code", "title",
"detail"}]}`` with 401, 422 for invalid parameters, 429, 5xx. Webhooks
(``call.initiated`` with ``direction``, ``call.answered``, ``call.hangup``
with ``hangup_cause``) echo ``client_state`` and are signed Ed25519 over
``"{timestamp}|{body}"`` (``tests.support.cpaas``).
"""

from __future__ import annotations

import base64
import binascii
import itertools
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.cpaas import telnyx_body, telnyx_headers
from tests.support.standin import Script, StandIn, json_body, json_response, media_response

API_KEY = "KEY0123456789ABCDEF_telnyx-test-key"
CONNECTION_ID = "1493045678901234567"
_legs = itertools.count(1)

HANGUP_CAUSES = {
    "busy": ("user_busy", "486"),
    "no-answer": ("timeout", "480"),
    "failed": ("unspecified", "500"),
    "canceled": ("originator_cancel", "487"),
}


def refusal(status: int) -> Response:
    titles = {401: "Authentication failed", 422: "Invalid value for to", 429: "Too many requests"}
    title = titles.get(status, "Internal server error")
    return json_response(
        {"errors": [{"code": str(10000 + status), "title": title, "detail": title + "."}]}, status
    )


def _base64(value: Any) -> bool:
    if not isinstance(value, str) or not value:
        return False
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


class TelnyxApi(StandIn):
    api_key = API_KEY
    connection_id = CONNECTION_ID

    def __init__(self) -> None:
        super().__init__()
        self.commands: list[tuple[str, dict[str, Any]]] = []  # (action, body) of every command
        self.legs: dict[str, dict[str, Any]] = {}  # call_control_id -> the leg, in the order created
        self.recordings: dict[str, str] = {}  # recording id -> its media path

    def routes(self) -> list[Route]:
        return [
            Route("/v2/calls", self.dial, methods=["POST"]),
            Route("/recordings/{name}", self.recording, methods=["GET"]),
            Route("/v2/recordings/{recording_id}", self.retrieve_recording, methods=["GET"]),
            Route("/v2/calls/{ccid}/actions/{action}", self.command, methods=["POST"]),
        ]

    # Recording URLs in call.recording.saved are presigned (an S3 URL whose
    # query carries X-Amz-Signature): no API key, the URL is the credential.
    presigned = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=600&X-Amz-Signature=standin0123"

    async def recording(self, request: Request) -> Response:
        self.media_requests.append(dict(request.headers))
        if request.url.query != self.presigned:
            return Response(b"<Error><Code>AccessDenied</Code></Error>", 403, media_type="application/xml")
        data = self.media.get(request.url.path)
        if data is None:
            return Response(b"<Error><Code>NoSuchKey</Code></Error>", 404, media_type="application/xml")
        return media_response(request, data, "audio/wav", self.honour_ranges)

    async def retrieve_recording(self, request: Request) -> Response:
        """ "Retrieve a call recording": ``data.download_urls`` freshly presigned (API key required).

        ``self.recordings`` maps a recording id to its media path."""
        if not self._authorised(request):
            return json_response({"errors": [{"code": "10009", "title": "Authentication failed"}]}, 401)
        path = self.recordings.get(request.path_params["recording_id"])
        if path is None:
            return json_response({"errors": [{"code": "10005", "title": "Resource not found"}]}, 404)
        base = f"{request.url.scheme}://{request.url.netloc}"
        url = f"{base}{path}?{self.presigned}"
        return json_response(
            {"data": {"record_type": "recording", "status": "completed", "download_urls": {"wav": url}}}
        )

    def _authorised(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.api_key}"

    async def dial(self, request: Request) -> Response:
        if not self._authorised(request):
            return refusal(401)
        body = await json_body(request)
        ok = (
            isinstance(body, dict)
            and body.get("connection_id") == self.connection_id
            and str(body.get("to", "")).startswith("+")
            and str(body.get("from", "")).startswith("+")
            and _base64(body.get("client_state"))
            and str(body.get("webhook_url", "")).startswith("https://")
        )
        if not ok:
            return refusal(422)
        assert isinstance(body, dict)
        script = self._script_for_user_leg()
        refused = await self.scripted_refusal(script, refusal)
        if refused is not None:
            return refused
        self.requests.append(("/v2/calls", body))
        leg = self._leg(body["from"], body["to"], body["client_state"], body["webhook_url"])
        await self.place(lambda: self._play_user_leg(script, leg))
        return json_response(
            {
                "data": {
                    "call_control_id": leg["ccid"],
                    "call_leg_id": leg["id"],
                    "call_session_id": "session-" + leg["id"],
                    "is_alive": False,
                    "record_type": "call",
                }
            }
        )

    def _script_for_user_leg(self) -> Script:
        # The dial rings the user's phone; the script is the one of the only number scripted, if any.
        return next(iter(self.scripts.values()), Script())

    def _leg(self, src: str, dst: str, state: str, url: str) -> dict[str, Any]:
        leg_id = f"leg-{next(_legs):04d}"
        leg = {
            "id": leg_id,
            "ccid": "v3:" + leg_id,
            "from": src,
            "to": dst,
            "client_state": state,
            "url": url,
        }
        self.legs[leg["ccid"]] = leg
        return leg

    async def event(self, leg: dict[str, Any], event_type: str, **payload: Any) -> None:
        body = telnyx_body(
            event_type, leg["id"], src=leg["from"], dst=leg["to"], client_state=leg["client_state"], **payload
        )
        await self.deliver(leg["url"], body, telnyx_headers(body))

    async def _play_user_leg(self, script: Script, leg: dict[str, Any]) -> None:
        await self.event(leg, "call.initiated", direction="outgoing", state="bridging")
        if script.user != "answer":
            cause, sip = HANGUP_CAUSES[script.user]
            await self.event(leg, "call.hangup", hangup_cause=cause, sip_hangup_cause=sip)
            return
        # The gateway transfers the leg while it handles this webhook.
        await self.event(leg, "call.answered")

    async def command(self, request: Request) -> Response:
        if not self._authorised(request):
            return refusal(401)
        leg = self.legs.get(request.path_params["ccid"])
        action = request.path_params["action"]
        body = await json_body(request)
        if leg is None or not isinstance(body, dict) or action not in ("transfer", "hangup"):
            return refusal(422)
        self.commands.append((action, body))
        if action == "hangup":
            self.hung_up.append(leg["ccid"])
            self.play(lambda: self.event(leg, "call.hangup", hangup_cause="normal_clearing"))
            return json_response({"data": {"result": "ok"}})
        if not (str(body.get("to", "")).startswith("+") and _base64(body.get("client_state"))):
            return refusal(422)
        script = self.script(body["to"])
        if script.connect_api is not None:
            return refusal(script.connect_api)
        if [b.get("command_id") for a, b in self.commands[:-1] if a == "transfer"].count(
            body.get("command_id")
        ):
            return json_response({"data": {"result": "ok"}})  # a repeated command_id: done already
        target = self._leg(
            body["from"], body["to"], body["client_state"], body.get("webhook_url") or leg["url"]
        )
        self.play(lambda: self._play_target_leg(script, leg, target))
        return json_response({"data": {"result": "ok"}})

    async def _play_target_leg(self, script: Script, user: dict[str, Any], target: dict[str, Any]) -> None:
        await self.event(target, "call.initiated", direction="outgoing", state="bridging")
        if script.target == "answer":
            await self.event(target, "call.answered")
            await self.event(target, "call.hangup", hangup_cause="normal_clearing")
            await self.event(user, "call.hangup", hangup_cause="normal_clearing")
            return
        cause, sip = HANGUP_CAUSES[script.target]
        user_end = self.event(user, "call.hangup", hangup_cause="normal_clearing")
        target_end = self.event(target, "call.hangup", hangup_cause=cause, sip_hangup_cause=sip)
        for end in (user_end, target_end) if script.user_end_first else (target_end, user_end):
            await end
