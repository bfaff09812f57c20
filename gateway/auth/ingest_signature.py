"""The generic ingest endpoint's request signature (HMAC-SHA256).

``X-Gateway-Timestamp: <unix seconds>`` and
``X-Gateway-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>``.
Several ``v1=`` values may be given, comma separated, to rotate secrets.
Signing the timestamp with the body lets the receiver refuse replays older
than its window.
"""

from __future__ import annotations

import hashlib
import hmac

from gateway.parsing import parse_decimal


class SignatureError(ValueError):
    pass


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def verify(
    secret: str, timestamp: str | None, signature: str | None, body: bytes, now: int, window: int
) -> None:
    if not timestamp or not signature:
        raise SignatureError("missing X-Gateway-Timestamp or X-Gateway-Signature")
    when = parse_decimal(timestamp, 12)
    if when is None:
        raise SignatureError("X-Gateway-Timestamp must be unix seconds")
    if abs(now - when) > window:
        raise SignatureError(f"timestamp outside the {window}s window")
    expected = sign(secret, when, body).encode()
    offered = [part.strip().encode("utf-8", "replace") for part in signature.split(",")]
    if not any(hmac.compare_digest(expected, part) for part in offered):
        raise SignatureError("signature does not match")
