"""The Vonage route: the Voice API calls the user, whose NCCO connects the number.

``POST /v1/calls`` with ``Authorization: Bearer`` and an application JWT
(RS256, signed with the application's private key; claims
``application_id``, ``iat``, ``exp``, ``jti``) calls the user's phone; its
inline ``ncco`` ``connect``s the target with the user's caller id once the
user answers. ``event_url`` (the user's leg) and the connect action's
``eventUrl`` (the target's) are the gateway's Vonage event URL with our
tag in the query. docs/dialling.md#vonage.

The token is written here, as the webhook check is: one algorithm, a few
lines over ``cryptography``'s RSA signing, no JWT library.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from gateway.config import ConfigError
from gateway.dial import cpaas
from gateway.dial.cpaas import without_plus
from gateway.dial.latecalls import LateCalls
from gateway.dial.routes import DialPlan, DialRefused, Placed
from gateway.sources.webhooks import dialled
from gateway.sources.webhooks.common import DialTag
from gateway.users.directory import Directory

TOKEN_SECONDS = 300


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def load_private_key(path: Path) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(
            [f"GATEWAY_VONAGE_PRIVATE_KEY_FILE={path}: not a PEM private key ({type(exc).__name__})"]
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError([f"GATEWAY_VONAGE_PRIVATE_KEY_FILE={path}: not an RSA key"])
    return key


def application_token(application_id: str, key: rsa.RSAPrivateKey, now_s: int) -> str:
    header = {"alg": "RS256", "typ": "JWT"}
    claims = {
        "application_id": application_id,
        "iat": now_s,
        "exp": now_s + TOKEN_SECONDS,
        "jti": secrets.token_hex(16),
    }
    signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
    signature = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64url(signature)}"


def _detail(body: Any) -> str | None:
    # Vonage's error body: {"type": "...", "title": "...", "detail": "...", "invalid_parameters": [...]}
    if isinstance(body, dict):
        text = body.get("detail") or body.get("title") or body.get("error_title")
        return str(text) if text else None
    return None


def over_already(response: httpx.Response) -> bool:
    """Vonage's answer to a hang-up of a call that is not in progress any more: 404 (its API
    reference documents 204, 401 and 404 for modifying a call; the uuid came from its own event)."""
    return response.status_code == 404


class VonageDialler(cpaas.RingsUserNumber):
    name = "vonage"
    match_seconds = 0.0  # both legs' events carry the dial's tag
    ring_seconds = cpaas.RING_SECONDS

    def __init__(
        self,
        application_id: str,
        private_key: rsa.RSAPrivateKey,
        api_url: str,
        event_url: str,
        directory: Callable[[], Directory],
        timeout_seconds: float,
    ) -> None:
        self._application_id = application_id
        self._key = private_key
        self._calls_url = f"{api_url}/v1/calls"
        self._event_url = event_url
        self._directory = directory
        self._http = cpaas.client(timeout_seconds)
        self._late = LateCalls("Vonage", self._http, over_already)

    def body(self, plan: DialPlan) -> dict[str, Any]:
        def tagged(leg: str) -> list[str]:
            return [f"{self._event_url}?{dialled.query(DialTag(plan.call_id, leg))}"]

        return {
            "to": [{"type": "phone", "number": without_plus(cpaas.user_phone(self._directory(), plan))}],
            "from": {"type": "phone", "number": without_plus(plan.presented())},
            "ncco": [
                {
                    "action": "connect",
                    "from": without_plus(plan.presented()),
                    "endpoint": [{"type": "phone", "number": without_plus(plan.target)}],
                    "eventUrl": tagged(dialled.TARGET_LEG),
                    "eventMethod": "POST",
                }
            ],
            "event_url": tagged(dialled.USER_LEG),
            "event_method": "POST",
            "ringing_timer": cpaas.USER_RING_SECONDS,
        }

    async def place(self, plan: DialPlan) -> Placed:
        token = application_token(self._application_id, self._key, int(time.time()))
        request = self._http.build_request(
            "POST", self._calls_url, json=self.body(plan), headers={"authorization": f"Bearer {token}"}
        )
        answer = await cpaas.send(
            self._http,
            "Vonage",
            request,
            _detail,
            "GATEWAY_VONAGE_APPLICATION_ID and GATEWAY_VONAGE_PRIVATE_KEY_FILE",
        )
        uuid = answer.get("uuid") if isinstance(answer, dict) else None
        if not isinstance(uuid, str):
            raise DialRefused.by_route("Vonage accepted the call but named no uuid")
        return Placed(reference=uuid)

    async def hang_up(self, tag: DialTag, uuid: str) -> None:
        """End a call Vonage placed for a dial that is over (``PUT /v1/calls/{uuid}``, ``hangup``)."""

        def request() -> httpx.Request:
            token = application_token(self._application_id, self._key, int(time.time()))
            return self._http.build_request(
                "PUT",
                f"{self._calls_url}/{quote(uuid, safe='')}",
                json={"action": "hangup"},
                headers={"authorization": f"Bearer {token}"},
            )

        await self._late.hang_up(uuid, tag.call_id, request)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self._http.aclose()
