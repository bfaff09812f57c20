"""The OAuth ``state`` of an install: signed and short-lived, against login CSRF (pure).

HubSpot hands the ``state`` back unchanged on the redirect; the callback
accepts a code only with a state this gateway (any instance: the key
comes from the app's client secret) issued in the last ten minutes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

TTL_SECONDS = 600


class InstallState:
    def __init__(self, client_secret: str) -> None:
        self._key = hashlib.sha256(b"gateway-hubspot-install\0" + client_secret.encode()).digest()

    def __repr__(self) -> str:
        return "InstallState(<key>)"

    def _mac(self, body: str) -> str:
        digest = hmac.new(self._key, body.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def issue(self, now: float) -> str:
        body = f"{int(now) + TTL_SECONDS}.{secrets.token_urlsafe(12)}"
        return f"{body}.{self._mac(body)}"

    def valid(self, state: str, now: float) -> bool:
        body, _, mac = state.rpartition(".")
        expires, _, _nonce = body.partition(".")
        if not body or not hmac.compare_digest(mac.encode(), self._mac(body).encode()):
            return False
        return expires.isascii() and expires.isdigit() and now <= int(expires)
