"""What Twilio, Telnyx and Vonage send, signed as each documents it.

The signing here is written from the providers' descriptions, apart from
the gateway's own verifiers, so a test that signs here and verifies there
checks one reading of the algorithm against another; published example
values pin both to the providers' own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.model import CallState, Signal, advance
from gateway.users.directory import Directory, User

TWILIO_TOKEN = "0123456789abcdef0123456789abcdef"
VONAGE_SECRET = "vonage-signature-secret-for-tests"
TELNYX_KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"telnyx test key").digest())
TELNYX_PUBLIC_KEY = base64.b64encode(
    TELNYX_KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
).decode()
PUBLIC_URL = "https://gateway.example.com"
TWILIO_PATH = "/webhooks/twilio/voice-status"
TWILIO_URL = PUBLIC_URL + TWILIO_PATH

CALLER = "+15555550199"  # nobody's number: the outside party
ALICE = "+15555550101"
BOB = "+15555550102"


def webhook_settings() -> dict[str, Any]:
    return {
        "public_url": PUBLIC_URL,
        "twilio_auth_token": TWILIO_TOKEN,
        "telnyx_public_key": TELNYX_PUBLIC_KEY,
        "vonage_signature_secret": VONAGE_SECRET,
    }


def now_s() -> int:
    return int(time.time())


# -- Twilio ------------------------------------------------------------------
def twilio_sign(token: str, url: str, params: dict[str, str]) -> str:
    text = url + "".join(key + params[key] for key in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), text.encode(), hashlib.sha1).digest()).decode()


def twilio_params(
    sid: str, status: str, *, direction: str = "inbound", at: int | None = None, **extra: str
) -> dict[str, str]:
    """A status callback's parameters, as Twilio posts them."""
    inbound = direction == "inbound"
    when = datetime.fromtimestamp(now_s() if at is None else at, UTC)
    params = {
        "AccountSid": "AC" + "0" * 32,
        "ApiVersion": "2010-04-01",
        "CallSid": sid,
        "CallStatus": status,
        "CallbackSource": "call-progress-events",
        "Called": ALICE if inbound else CALLER,
        "Caller": CALLER if inbound else ALICE,
        "Direction": direction,
        "From": CALLER if inbound else ALICE,
        "To": ALICE if inbound else CALLER,
        "SequenceNumber": "0",
        "Timestamp": format_datetime(when),
    }
    params.update(extra)
    return params


def twilio_request(params: dict[str, str], token: str = TWILIO_TOKEN) -> tuple[bytes, dict[str, str]]:
    body = urlencode(params).encode()
    return body, {
        "content-type": "application/x-www-form-urlencoded",
        "x-twilio-signature": twilio_sign(token, TWILIO_URL, params),
    }


def twilio_json_request(body: bytes, token: str = TWILIO_TOKEN) -> tuple[str, bytes, dict[str, str]]:
    """A JSON-bodied request (path with query, body, headers): the body is signed through the URL."""
    path = f"{TWILIO_PATH}?bodySHA256={hashlib.sha256(body).hexdigest()}"
    headers = {
        "content-type": "application/json",
        "x-twilio-signature": twilio_sign(token, PUBLIC_URL + path, {}),
    }
    return path, body, headers


# -- Telnyx ------------------------------------------------------------------
def telnyx_body(
    event_type: str,
    leg: str,
    *,
    at: float | None = None,
    src: str = CALLER,
    dst: str = ALICE,
    **payload: Any,
) -> bytes:
    """A Call Control webhook, as Telnyx posts it."""
    occurred = datetime.fromtimestamp(time.time() if at is None else at, UTC)
    base: dict[str, Any] = {
        "call_control_id": "v3:" + leg,
        "call_leg_id": leg,
        "call_session_id": "session-" + leg,
        "connection_id": "1234567890",
        "client_state": None,
        "from": src,
        "to": dst,
    }
    base.update(payload)
    doc = {
        "data": {
            "record_type": "event",
            "event_type": event_type,
            "id": f"evt-{leg}-{event_type}-{at}",
            "occurred_at": occurred.isoformat().replace("+00:00", "Z"),
            "payload": base,
        },
        "meta": {"attempt": 1, "delivered_to": "https://gateway.example.com/webhooks/telnyx/call-events"},
    }
    return json.dumps(doc).encode()


def telnyx_headers(
    body: bytes, timestamp: int | None = None, key: Ed25519PrivateKey = TELNYX_KEY
) -> dict[str, str]:
    ts = str(now_s() if timestamp is None else timestamp)
    signature = key.sign(f"{ts}|".encode() + body)
    return {
        "content-type": "application/json",
        "telnyx-timestamp": ts,
        "telnyx-signature-ed25519": base64.b64encode(signature).decode(),
    }


# -- Vonage ------------------------------------------------------------------
def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def vonage_token(
    body: bytes,
    *,
    secret: str = VONAGE_SECRET,
    iat: int | None = None,
    alg: str = "HS256",
    payload_hash: str | None = None,
    claims: dict[str, Any] | None = None,
) -> str:
    """A signed-callback JWT; ``claims`` adds or replaces claims (None leaves one out)."""
    header = {"alg": alg, "typ": "JWT"}
    base: dict[str, Any] = {
        "iat": now_s() if iat is None else iat,
        "jti": "5f6d4b8c-1d0a-4e38-9b4c-2a1b3c4d5e6f",
        "iss": "Vonage",
        "payload_hash": hashlib.sha256(body).hexdigest() if payload_hash is None else payload_hash,
        "api_key": "abcd1234",
        "application_id": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
    }
    base.update(claims or {})
    sent = {name: value for name, value in base.items() if value is not None}
    signing_input = _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(sent).encode())
    mac = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + _b64url(mac)


def vonage_body(
    uuid: str, status: str, *, direction: str = "inbound", at: float | None = None, **extra: Any
) -> bytes:
    """A Voice API event, as Vonage posts it (numbers without the "+")."""
    inbound = direction == "inbound"
    when = datetime.fromtimestamp(time.time() if at is None else at, UTC)
    doc: dict[str, Any] = {
        "from": (CALLER if inbound else ALICE).lstrip("+"),
        "to": (ALICE if inbound else CALLER).lstrip("+"),
        "uuid": uuid,
        "conversation_uuid": "CON-" + uuid,
        "status": status,
        "direction": direction,
        "timestamp": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    doc.update(extra)
    return json.dumps(doc).encode()


def vonage_headers(body: bytes, **token: Any) -> dict[str, str]:
    return {"content-type": "application/json", "authorization": "Bearer " + vonage_token(body, **token)}


# -- the sans-I/O pipeline's far end -------------------------------------------
def users_directory() -> Directory:
    """Alice and Bob as in tests/harness.py, without password hashing."""
    return Directory(
        [
            User(id="alice", login="alice", tenant=100, password_hash="x", numbers=(ALICE,)),
            User(id="bob", login="bob", tenant=100, password_hash="x", numbers=(BOB,)),
        ]
    )


def sdk_events(signals: list[Signal]) -> list[str]:
    """The SDK calls the model makes of these signals, ``callEnded`` with its status."""
    states: dict[tuple[str, str], CallState] = {}
    out: list[str] = []
    for signal in signals:
        key = (signal.user_id, signal.call_key)
        states[key], events = advance(states.get(key), signal)
        for event in events:
            status = event.payload.get("callEndStatus")
            out.append(f"{event.type}:{status}" if status else event.type)
    return out
