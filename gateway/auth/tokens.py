"""Short-lived signed credentials: session tokens and one-minute stream tickets.

Stateless (HMAC over a small JSON claim), so any instance sharing the secret
accepts what any other issued. Each carries a random id, by which a
credential meant for one use (a stream ticket) is burnt in the broker.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from gateway import jsontext


class TokenError(ValueError):
    pass


@dataclass(frozen=True)
class Claims:
    user_id: str
    kind: str
    expires_at: int
    # Empty in a token issued before tokens had ids.
    token_id: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"gateway-token\0" + secret.encode()).digest()

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode("utf-8", "replace"), hashlib.sha256).digest())

    def issue(self, user_id: str, kind: str, now: int, ttl: int) -> str:
        claims = {"sub": user_id, "knd": kind, "exp": now + ttl, "jti": secrets.token_urlsafe(16)}
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        return f"v1.{body}.{self._mac(body)}"

    def verify(self, token: str, kind: str, now: int) -> Claims:
        try:
            version, body, mac = token.split(".")
        except ValueError:
            raise TokenError("malformed token") from None
        offered = mac.encode("utf-8", "replace")
        if version != "v1" or not hmac.compare_digest(offered, self._mac(body).encode()):
            raise TokenError("bad token signature")
        try:
            claims = jsontext.loads(_unb64(body))
            result = Claims(
                str(claims["sub"]), str(claims["knd"]), int(claims["exp"]), str(claims.get("jti", ""))
            )
        except (ValueError, KeyError, TypeError):
            raise TokenError("malformed token") from None
        if result.kind != kind:
            raise TokenError(f"a {result.kind} token cannot be used here")
        if result.expires_at <= now:
            raise TokenError("token expired")
        return result
