"""HubSpot's ``X-HubSpot-Signature-v3`` on the requests HubSpot sends to the app.

Sans-I/O. HubSpot's request validation guide ("Validate the v3 request
signature", developers.hubspot.com/docs/apps/developer-platform/build-apps/
authentication/request-validation; the same steps in its legacy-apps page
and in HubSpot's Python client, ``hubspot.utils.signature``):

1. refuse the request if ``X-HubSpot-Request-Timestamp`` (Unix time in
   milliseconds) is more than 5 minutes old;
2. in the request URI (``https://`` + host + path + query, as requested),
   decode only the percent-escapes of HubSpot's table: ``%3A : %2F / %3F ?
   %40 @ %21 ! %24 $ %27 ' %28 ( %29 ) %2A * %2C , %3B ;``; every other
   escape (a non-ASCII character's UTF-8 bytes, a space, ``%25``) stays as
   sent;
3. concatenate method + URI + body + timestamp, UTF-8;
4. HMAC-SHA256 keyed with the app's client secret, base64, and compare with
   the header.

The comparison is constant-time. A timestamp from the future is taken as
HubSpot's clock running ahead, within the same window.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

MAX_AGE_MS = 5 * 60 * 1000

# HubSpot's table of the escapes to decode, and nothing else.
_DECODED = {
    "3A": ":",
    "2F": "/",
    "3F": "?",
    "40": "@",
    "21": "!",
    "24": "$",
    "27": "'",
    "28": "(",
    "29": ")",
    "2A": "*",
    "2C": ",",
    "3B": ";",
}
_ESCAPE = re.compile(r"%(3A|2F|3F|40|21|24|27|28|29|2A|2C|3B)", re.IGNORECASE)
_DIGITS = re.compile(r"^[0-9]{1,16}\Z")


class SignatureRefused(ValueError):
    """Why a request is not taken as HubSpot's; ``reason`` is a metric label."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def decode_uri(uri: str) -> str:
    """The URI with HubSpot's table of escapes decoded (only those)."""
    return _ESCAPE.sub(lambda m: _DECODED[m.group(1).upper()], uri)


def signature(client_secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """The v3 signature of a request as HubSpot computes it (``uri`` as requested)."""
    source = method.upper().encode() + decode_uri(uri).encode("utf-8") + body + timestamp.encode()
    mac = hmac.new(client_secret.encode("utf-8"), source, hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def verify(
    client_secret: str,
    method: str,
    uri: str,
    body: bytes,
    signature_header: str | None,
    timestamp_header: str | None,
    now_ms: int,
) -> None:
    """Raise ``SignatureRefused`` unless the request carries a fresh, matching v3 signature."""
    if not signature_header or not timestamp_header:
        raise SignatureRefused(
            "missing X-HubSpot-Signature-v3 or X-HubSpot-Request-Timestamp header", "no-signature"
        )
    timestamp = timestamp_header.strip()
    if not _DIGITS.match(timestamp):
        raise SignatureRefused(
            "X-HubSpot-Request-Timestamp is not Unix time in milliseconds", "bad-signature"
        )
    if abs(now_ms - int(timestamp)) > MAX_AGE_MS:
        raise SignatureRefused("X-HubSpot-Request-Timestamp is more than 5 minutes from now", "stale")
    expected = signature(client_secret, method, uri, body, timestamp).encode()
    if not hmac.compare_digest(expected, signature_header.strip().encode()):
        raise SignatureRefused(
            "X-HubSpot-Signature-v3 does not match (is the client secret the app's, "
            "and GATEWAY_PUBLIC_URL the URL HubSpot calls?)",
            "bad-signature",
        )
