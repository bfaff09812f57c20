"""The Twilio route: the Calls resource rings the user, TwiML then dials the number.

One request (``POST /2010-04-01/Accounts/{AccountSid}/Calls.json``, HTTP
Basic with the Account SID and the Auth Token) creates a call to the
user's phone whose inline ``Twiml`` ``<Dial>``s the target with the
caller id once the user answers. Both legs report to the gateway's Twilio
status URL with our tag in its query (Twilio signs the URL, query
included): ``StatusCallback`` for the user's leg, the ``<Number>`` noun's
``statusCallback`` for the target's. docs/dialling.md#twilio.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode
from xml.sax.saxutils import escape, quoteattr

import httpx

from gateway.dial import cpaas
from gateway.dial.latecalls import LateCalls
from gateway.dial.routes import DialPlan, DialRefused, Placed
from gateway.sources.webhooks import dialled
from gateway.sources.webhooks.common import DialTag
from gateway.users.directory import Directory

EVENTS = ("initiated", "ringing", "answered", "completed")


def _detail(body: Any) -> str | None:
    # Twilio's error body: {"code": 21211, "message": "...", "more_info": ..., "status": 400}
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        code = body.get("code")
        return f"{body['message']} (error {code})" if code else body["message"]
    return None


# Twilio's error for an update of a call that is not in progress any more.
INVALID_CALL_STATE = 21220


def over_already(response: httpx.Response) -> bool:
    """Twilio's answer to ``Status=completed`` for a call that had ended: 400, error 21220."""
    if response.status_code != 400:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("code") == INVALID_CALL_STATE


def twiml(plan: DialPlan, status_url: str) -> str:
    """Dial the target with the user's caller id; report the target's leg with its tag."""
    callback = f"{status_url}?{dialled.query(DialTag(plan.call_id, dialled.TARGET_LEG))}"
    return (
        '<?xml version="1.0" encoding="UTF-8"?><Response>'
        f"<Dial callerId={quoteattr(plan.presented())}>"
        f"<Number statusCallback={quoteattr(callback)}"
        f' statusCallbackEvent="{" ".join(EVENTS)}" statusCallbackMethod="POST">'
        f"{escape(plan.target)}</Number></Dial></Response>"
    )


class TwilioDialler(cpaas.RingsUserNumber):
    name = "twilio"
    match_seconds = 0.0  # both legs' callbacks carry the dial's tag
    ring_seconds = cpaas.RING_SECONDS

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        api_url: str,
        status_url: str,
        directory: Callable[[], Directory],
        timeout_seconds: float,
    ) -> None:
        self._basic = "Basic " + base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
        self._calls_url = f"{api_url}/2010-04-01/Accounts/{account_sid}/Calls.json"
        self._status_url = status_url
        self._directory = directory
        self._http = cpaas.client(timeout_seconds)
        self._late = LateCalls("Twilio", self._http, over_already)

    def request(self, plan: DialPlan) -> httpx.Request:
        user_leg = DialTag(plan.call_id, dialled.USER_LEG)
        form: list[tuple[str, str]] = [
            ("To", cpaas.user_phone(self._directory(), plan)),
            ("From", plan.presented()),
            ("Twiml", twiml(plan, self._status_url)),
            ("Timeout", str(cpaas.USER_RING_SECONDS)),
            ("StatusCallback", f"{self._status_url}?{dialled.query(user_leg)}"),
            ("StatusCallbackMethod", "POST"),
            *(("StatusCallbackEvent", event) for event in EVENTS),
        ]
        return self._http.build_request(
            "POST",
            self._calls_url,
            content=urlencode(form).encode(),
            headers={"content-type": "application/x-www-form-urlencoded", "authorization": self._basic},
        )

    async def place(self, plan: DialPlan) -> Placed:
        body = await cpaas.send(
            self._http,
            "Twilio",
            self.request(plan),
            _detail,
            "GATEWAY_TWILIO_ACCOUNT_SID and GATEWAY_TWILIO_AUTH_TOKEN",
        )
        sid = body.get("sid") if isinstance(body, dict) else None
        if not isinstance(sid, str):
            raise DialRefused.by_route("Twilio accepted the call but named no call sid")
        return Placed(reference=sid)

    async def hang_up(self, tag: DialTag, call_sid: str) -> None:
        """End a call Twilio placed for a dial that is over (``Status=completed`` ends it in any state)."""
        url = self._calls_url.removesuffix(".json") + f"/{quote(call_sid, safe='')}.json"

        def request() -> httpx.Request:
            return self._http.build_request(
                "POST",
                url,
                content=urlencode({"Status": "completed"}).encode(),
                headers={"content-type": "application/x-www-form-urlencoded", "authorization": self._basic},
            )

        await self._late.hang_up(call_sid, tag.call_id, request)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self._http.aclose()
