"""A local stand-in of Vonage's Voice API: create a call with an NCCO, then the call's events.

Follows Vonage's Voice API reference: ``POST /v1/calls`` with
``Authorization: Bearer`` and an application JWT (RS256 with the
application's private key; ``application_id``, ``iat``, ``jti``, ``exp``
claims), a JSON body with ``to`` (a list of endpoints, ``{"type":
"phone", "number"}`` in digits without ``+``), ``from``, an inline
``ncco`` (here a ``connect`` action with ``from``, ``endpoint``,
``eventUrl`` (a list) and ``eventMethod``), ``event_url`` (a list) and
``event_method``; 201 with ``uuid``, ``status``, ``direction``,
``conversation_uuid``; errors as ``{"type", "title", "detail"}`` with 401,
400 for invalid parameters, 429, 5xx; ``PUT /v1/calls/{uuid}`` with
``{"action": "hangup"}`` ends a call (204; one still ringing ends
``cancelled``; one over already: 404, the reference's status for a call
it cannot modify). Events (``started``, ``ringing``,
``answered``, ``completed`` with ``duration``, ``busy``, ``timeout``) go to
the call's ``event_url`` and, for the leg the NCCO connects, to the
action's ``eventUrl``; signed callbacks carry an HS256 JWT with the body's
``payload_hash`` (``tests.support.cpaas``).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import time
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.cpaas import vonage_body, vonage_headers
from tests.support.standin import Script, StandIn, json_body, json_response, media_response

APPLICATION_ID = "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"
_uuids = itertools.count(1)


def private_key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def refusal(status: int, detail: str = "") -> Response:
    titles = {401: "Unauthorized", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests"}
    title = titles.get(status, "Internal Server Error")
    return json_response(
        {
            "type": f"https://developer.vonage.com/api-errors#{status}",
            "title": title,
            "detail": detail or title,
        },
        status,
    )


def _b64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _phone(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") == "phone" and str(value.get("number", "")).isdigit()


def _urls(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 1 and str(value[0]).startswith("https://")


class VonageApi(StandIn):
    application_id = APPLICATION_ID
    invalid_status = 400

    def __init__(self) -> None:
        super().__init__()
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.claims: list[dict[str, Any]] = []

    def routes(self) -> list[Route]:
        return [
            Route("/v1/calls", self.create_call, methods=["POST"]),
            Route("/v1/calls/{uuid}", self.modify_call, methods=["PUT"]),
            Route("/v1/files/{file_id}", self.recording, methods=["GET"]),
        ]

    async def recording(self, request: Request) -> Response:
        """A record action's file (Vonage's Recording guide): ``GET recording_url`` with the
        application's JWT; the file is MP3 unless the action asked for ``wav``."""
        self.media_requests.append(dict(request.headers))
        problem = self._token_problem(request)
        if problem is not None:
            return refusal(401, problem)
        data = self.media.get(request.url.path)
        if data is None:
            return refusal(404, "no such file")
        return media_response(request, data, "audio/wav", self.honour_ranges)

    def _token_problem(self, request: Request) -> str | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        parts = token.split(".")
        if scheme != "Bearer" or len(parts) != 3:
            return "no Bearer JWT"
        try:
            header = json.loads(_b64url(parts[0]))
            claims = json.loads(_b64url(parts[1]))
            signature = _b64url(parts[2])
        except (binascii.Error, ValueError):
            return "not a JWT"
        if header.get("alg") != "RS256":
            return "not RS256"
        try:
            self.key.public_key().verify(
                signature, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except InvalidSignature:
            return "signature does not match the application's public key"
        now = time.time()
        if claims.get("application_id") != self.application_id:
            return "wrong application_id"
        if not (abs(now - claims.get("iat", 0)) < 60 and claims.get("exp", 0) > now and claims.get("jti")):
            return "iat, exp or jti missing or stale"
        self.claims.append(claims)
        return None

    async def create_call(self, request: Request) -> Response:
        problem = self._token_problem(request)
        if problem is not None:
            return refusal(401, problem)
        body = await json_body(request)
        ncco = body.get("ncco") if isinstance(body, dict) else None
        connect = ncco[0] if isinstance(ncco, list) and len(ncco) == 1 else None
        ok = (
            isinstance(body, dict)
            and isinstance(body.get("to"), list)
            and len(body["to"]) == 1
            and _phone(body["to"][0])
            and _phone(body.get("from"))
            and _urls(body.get("event_url"))
            and body.get("event_method") == "POST"
            and isinstance(connect, dict)
            and connect.get("action") == "connect"
            and str(connect.get("from", "")).isdigit()
            and isinstance(connect.get("endpoint"), list)
            and _phone(connect["endpoint"][0])
            and _urls(connect.get("eventUrl"))
        )
        if not ok:
            return refusal(400, "invalid parameters")
        assert isinstance(body, dict) and isinstance(connect, dict)
        script = self.script("+" + connect["endpoint"][0]["number"])
        refused = await self.scripted_refusal(script, refusal)
        if refused is not None:
            return refused
        self.requests.append(("/v1/calls", body))
        uuid = f"{next(_uuids):08x}-0000-4000-8000-000000000000"
        await self.place(lambda: self._play(script, uuid, body, connect))
        return json_response(
            {"uuid": uuid, "status": "started", "direction": "outbound", "conversation_uuid": "CON-" + uuid},
            201,
        )

    async def _event(self, url: str, uuid: str, status: str, src: str, dst: str, **extra: Any) -> None:
        body = vonage_body(uuid, status, direction="outbound", **{"from": src, "to": dst, **extra})
        await self.deliver(url, body, vonage_headers(body))

    async def modify_call(self, request: Request) -> Response:
        """Modify a call in progress: ``{"action": "hangup"}`` ends it (204)."""
        problem = self._token_problem(request)
        if problem is not None:
            return refusal(401, problem)
        body = await json_body(request)
        if not isinstance(body, dict) or body.get("action") != "hangup":
            return refusal(400, "invalid action")
        uuid = request.path_params["uuid"]
        self.hung_up.append(uuid)
        if self.over_already(uuid):
            return refusal(404, "call not found")
        return Response(status_code=204)

    async def _play(self, script: Script, uuid: str, body: dict[str, Any], connect: dict[str, Any]) -> None:
        user_url, src, phone = body["event_url"][0], body["from"]["number"], body["to"][0]["number"]

        async def user_leg(status: str, **extra: Any) -> None:
            await self._event(user_url, uuid, status, src, phone, **extra)

        for status in ("started", "ringing"):
            await user_leg(status)
            if uuid in self.hung_up:
                await user_leg("cancelled")
                return
        if script.user != "answer":
            await user_leg({"busy": "busy", "no-answer": "timeout"}[script.user])
            return
        await user_leg("answered")
        leg = f"{next(_uuids):08x}-0000-4000-8000-000000000000"
        target_url, caller, number = connect["eventUrl"][0], connect["from"], connect["endpoint"][0]["number"]

        async def target_leg(status: str, **extra: Any) -> None:
            await self._event(target_url, leg, status, caller, number, **extra)

        await target_leg("started")
        await target_leg("ringing")
        if script.target == "answer":
            await target_leg("answered")
            await target_leg("completed", duration="4")
            await user_leg("completed", duration="5")
            return
        status = {"busy": "busy", "no-answer": "timeout", "failed": "failed", "canceled": "cancelled"}[
            script.target
        ]
        if script.user_end_first:
            await user_leg("completed", duration="1")
            await target_leg(status)
        else:
            await target_leg(status)
            await user_leg("completed", duration="1")
