"""Requests as HubSpot sends them to an app, signed ``X-HubSpot-Signature-v3``.

Written from HubSpot's "Validate the v3 request signature" steps, apart
from the gateway's verifier: method + URI (HubSpot's table of escapes
decoded) + body + timestamp in milliseconds, HMAC-SHA256 with the app's
client secret, base64.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

CLIENT_SECRET = "hubspot-client-secret-for-tests"

_TABLE = {"%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$"}
_TABLE |= {"%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";"}


def hubspot_headers(
    method: str, uri: str, body: bytes = b"", *, timestamp_ms: int | None = None, secret: str = CLIENT_SECRET
) -> dict[str, str]:
    ts = str(int(time.time() * 1000) if timestamp_ms is None else timestamp_ms)
    decoded = uri
    for escape, char in _TABLE.items():
        decoded = decoded.replace(escape, char).replace(escape.lower(), char)
    source = method.encode() + decoded.encode() + body + ts.encode()
    mac = base64.b64encode(hmac.new(secret.encode(), source, hashlib.sha256).digest()).decode()
    return {"x-hubspot-signature-v3": mac, "x-hubspot-request-timestamp": ts}
