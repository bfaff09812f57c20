"""A local stand-in of Twilio's Voice API: the Calls resource, then the call's status callbacks.

Follows Twilio's documentation of the Call resource (create a call:
``POST /2010-04-01/Accounts/{AccountSid}/Calls.json``, form parameters
``To``, ``From``, ``Twiml``, ``StatusCallback``, ``StatusCallbackEvent``
(repeated), ``StatusCallbackMethod``; HTTP Basic with the Account SID and
Auth Token; 201 with the call's ``sid``; errors as ``{"code", "message",
"more_info", "status"}``: 401 code 20003, 400 for a bad parameter, 429
code 20429), of TwiML ``<Dial callerId>`` with ``<Number statusCallback
statusCallbackEvent statusCallbackMethod>``, and of status callbacks
(``CallSid``, ``CallStatus``, ``Direction`` ``outbound-api`` for the
created call and ``outbound-dial`` for the dialled one, ``ParentCallSid``,
``CallDuration``, ``Timestamp``), of updating a call (``POST
.../Calls/{CallSid}.json``, ``Status=completed`` hangs it up; a call still
ringing ends ``canceled``; one over already is error 21220, invalid call
state, 400), signed with ``X-Twilio-Signature`` over
the callback URL as given (query included) and the sorted parameters.
"""

from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode
from xml.etree import ElementTree

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.cpaas import TWILIO_TOKEN, twilio_params, twilio_sign
from tests.support.standin import Script, StandIn, json_response, media_response

ACCOUNT_SID = "AC" + "5" * 32
EVENTS = {"initiated", "ringing", "answered", "completed"}
_sids = itertools.count(1)


def _sid() -> str:
    return f"CA{next(_sids):032x}"


def _error(status: int, code: int, message: str) -> Response:
    return json_response(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status,
    )


def refusal(status: int) -> Response:
    if status == 401:
        return _error(401, 20003, "Authenticate")
    if status == 429:
        return _error(429, 20429, "Too Many Requests")
    if status >= 500:
        return _error(status, 20500, "Internal Server Error")
    return _error(status, 21211, "Invalid 'To' Phone Number")


@dataclass
class Dial:
    """What the inline TwiML asks for."""

    caller_id: str
    number: str
    callback: str
    events: set[str]
    method: str


def read_twiml(text: str) -> Dial | None:
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError:
        return None
    dial = root.find("Dial")
    number = dial.find("Number") if dial is not None else None
    if root.tag != "Response" or dial is None or number is None:
        return None
    return Dial(
        caller_id=dial.get("callerId", ""),
        number=(number.text or "").strip(),
        callback=number.get("statusCallback", ""),
        events=set(number.get("statusCallbackEvent", "").split()),
        method=number.get("statusCallbackMethod", "POST"),
    )


class TwilioApi(StandIn):
    account_sid = ACCOUNT_SID
    auth_token = TWILIO_TOKEN
    invalid_status = 400

    def routes(self) -> list[Route]:
        return [
            Route("/2010-04-01/Accounts/{sid}/Calls.json", self.create_call, methods=["POST"]),
            Route("/2010-04-01/Accounts/{sid}/Calls/{call}.json", self.update_call, methods=["POST"]),
            Route("/2010-04-01/Accounts/{sid}/Recordings/{name}", self.recording, methods=["GET"]),
        ]

    async def recording(self, request: Request) -> Response:
        """A Recording's media (Twilio's Recordings docs): ``<RecordingUrl>.wav`` is the WAV,
        behind HTTP basic auth when "Enforce HTTP Auth on Media URLs" is on (it is, here)."""
        self.media_requests.append(dict(request.headers))
        if not self._authorised(request):
            return refusal(401)
        data = self.media.get(request.url.path)
        if data is None:
            return refusal(404)
        return media_response(request, data, "audio/x-wav", self.honour_ranges)

    def _authorised(self, request: Request) -> bool:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme != "Basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            return False
        return (user, password) == (self.account_sid, self.auth_token) and request.path_params["sid"] == user

    async def create_call(self, request: Request) -> Response:
        if not self._authorised(request):
            return refusal(401)
        if request.headers.get("content-type") != "application/x-www-form-urlencoded":
            return _error(400, 20001, "Unsupported content type")
        pairs = parse_qsl((await request.body()).decode(), keep_blank_values=True)
        form = dict(pairs)
        events = {value for name, value in pairs if name == "StatusCallbackEvent"}
        dial = read_twiml(form.get("Twiml", ""))
        problems = [
            name
            for name, ok in [
                ("To", form.get("To", "").startswith("+")),
                ("From", form.get("From", "").startswith("+")),
                (
                    "Twiml",
                    dial is not None and dial.caller_id.startswith("+") and dial.number.startswith("+"),
                ),
                ("StatusCallback", form.get("StatusCallback", "").startswith("https://")),
                ("StatusCallbackEvent", events == EVENTS),
                ("StatusCallbackMethod", form.get("StatusCallbackMethod") == "POST"),
                (
                    "Twiml statusCallback",
                    dial is not None and dial.events == EVENTS and dial.callback.startswith("https://"),
                ),
            ]
            if not ok
        ]
        if problems:
            return _error(400, 21205, f"Invalid parameters: {', '.join(problems)}")
        assert dial is not None
        script = self.script(dial.number)
        refused = await self.scripted_refusal(script, refusal)
        if refused is not None:
            return refused
        self.requests.append((request.url.path, form))
        sid = _sid()
        await self.place(lambda: self._play(script, sid, form, dial))
        return json_response(
            {
                "sid": sid,
                "status": "queued",
                "direction": "outbound-api",
                "to": form["To"],
                "from": form["From"],
            },
            201,
        )

    async def update_call(self, request: Request) -> Response:
        """Update a call: ``Status`` ``completed`` (or ``canceled``) hangs it up."""
        if not self._authorised(request):
            return refusal(401)
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        if form.get("Status") not in ("completed", "canceled"):
            return _error(400, 21218, "Invalid Status")
        call = request.path_params["call"]
        self.hung_up.append(call)
        if self.over_already(call):
            return _error(400, 21220, "Call is not in-progress. Cannot redirect.")
        return json_response({"sid": call, "status": form["Status"]})

    async def _callback(
        self, url: str, sid: str, status: str, direction: str, src: str, dst: str, **extra: str
    ) -> None:
        params = twilio_params(sid, status, direction=direction)
        params.update(From=src, To=dst, Caller=src, Called=dst, AccountSid=self.account_sid, **extra)
        await self.deliver(
            url,
            urlencode(params).encode(),
            {
                "content-type": "application/x-www-form-urlencoded",
                "x-twilio-signature": twilio_sign(self.auth_token, url, params),
            },
        )

    async def _play(self, script: Script, user_sid: str, form: dict[str, str], dial: Dial) -> None:
        user_url, caller, phone = form["StatusCallback"], form["From"], form["To"]

        async def user_leg(status: str, **extra: str) -> None:
            await self._callback(user_url, user_sid, status, "outbound-api", caller, phone, **extra)

        for status in ("initiated", "ringing"):
            await user_leg(status)
            if user_sid in self.hung_up:
                await user_leg("canceled")
                return
        if script.user != "answer":
            await user_leg(script.user)
            return
        await user_leg("in-progress")
        target_sid = _sid()

        async def target_leg(status: str, **extra: str) -> None:
            await self._callback(
                dial.callback,
                target_sid,
                status,
                "outbound-dial",
                dial.caller_id,
                dial.number,
                ParentCallSid=user_sid,
                **extra,
            )

        await target_leg("initiated")
        await target_leg("ringing")
        if script.target == "answer":
            await target_leg("in-progress")
            await target_leg("completed", CallDuration="4")
            await user_leg("completed", CallDuration="5")
            return
        if script.user_end_first:
            await user_leg("completed", CallDuration="1")
            await target_leg(script.target)
        else:
            await target_leg(script.target)
            await user_leg("completed", CallDuration="1")
