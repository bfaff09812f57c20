"""The media links HubSpot is given: signed, naming one call, working for minutes (pure).

A link is ``<payload>.<mac>``, both base64url: the payload is the call's
external id and the link's expiry (Unix seconds), the MAC an HMAC-SHA256 of
the payload with a key derived from the gateway's secret (``GATEWAY_SECRET``,
shared by every instance). Nothing in it is secret but the MAC; it grants
reading one recording until it expires.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass

from gateway import jsontext

_B64URL = re.compile(r"^[A-Za-z0-9_-]{1,1024}\Z")


class LinkRefused(ValueError):
    """``expired`` tells a link that was genuine but is too old (410) from a forged one (403)."""

    def __init__(self, message: str, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


@dataclass(frozen=True)
class LinkSigner:
    key: bytes

    @classmethod
    def from_secret(cls, secret: str) -> LinkSigner:
        # Its own key, so a link is never another credential's MAC.
        return cls(hashlib.sha256(b"gateway recording links\0" + secret.encode()).digest())

    def _mac(self, payload: str) -> str:
        digest = hmac.new(self.key, payload.encode("ascii"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def issue(self, external_id: str, expires_s: int) -> str:
        raw = json.dumps({"c": external_id, "e": expires_s}, separators=(",", ":")).encode()
        payload = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        return f"{payload}.{self._mac(payload)}"

    def verify(self, token: str, now_s: int) -> str:
        """The external id the link names; ``LinkRefused`` if forged, malformed or expired."""
        payload, _, mac = token.partition(".")
        if not _B64URL.match(payload) or not _B64URL.match(mac):
            raise LinkRefused("not a recording link")
        if not hmac.compare_digest(self._mac(payload).encode(), mac.encode()):
            raise LinkRefused("recording link signature does not match")
        try:
            data = jsontext.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except ValueError:  # binascii.Error is one
            raise LinkRefused("not a recording link") from None
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("c"), str)
            or not isinstance(data.get("e"), int)
        ):
            raise LinkRefused("not a recording link")
        if data["e"] <= now_s:
            raise LinkRefused("recording link expired; HubSpot asks for a new one", expired=True)
        return str(data["c"])
