"""Vonage Voice API event webhooks: verify the signed JWT, read, map.

Sans-I/O. With signed callbacks on, Vonage sends ``Authorization: Bearer``
and a JWT signed HS256 with the account's signature secret; its claims
carry ``payload_hash``, the hex SHA-256 of the request body, and ``iat``.

The JWT check is written here rather than taken from a JWT library: only
one algorithm is ever acceptable, so the whole of it is an HMAC-SHA256 over
two base64url segments, compared in constant time, with the header required
to say HS256 (no "none", no key confusion). That is less code to trust than
a general library's algorithm table, and no dependency. ``verify_hs256`` is
tested against RFC 7515's published HS256 example.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Any

from gateway import jsontext
from gateway.model import Direction, EndStatus, Phase
from gateway.sources.webhooks.common import (
    CallEvent,
    Ignored,
    WebhookError,
    call_id,
    iso_ms,
    optional_text,
    seconds_ms,
    with_implied_answer,
)
from gateway.sources.webhooks.recording import CONTENT_TYPES, RecordingEvent, https_url, recording_id

# status -> (phase, proposed end status). "machine" is an answering machine
# picking up: the call was answered. "cancelled" on an inbound call and
# "timeout"/"unanswered" on any unanswered inbound call end up MISSED by the
# model's rule; on an outbound call they stay CANCELED and NO_ANSWER.
STATUSES: dict[str, tuple[Phase, EndStatus | None]] = {
    "started": (Phase.RINGING, None),
    "ringing": (Phase.RINGING, None),
    "answered": (Phase.ANSWERED, None),
    "machine": (Phase.ANSWERED, None),
    "completed": (Phase.ENDED, EndStatus.COMPLETED),
    "busy": (Phase.ENDED, EndStatus.BUSY),
    "cancelled": (Phase.ENDED, EndStatus.CANCELED),
    "failed": (Phase.ENDED, EndStatus.FAILED),
    "rejected": (Phase.ENDED, EndStatus.REJECTED),
    "timeout": (Phase.ENDED, EndStatus.NO_ANSWER),
    "unanswered": (Phase.ENDED, EndStatus.NO_ANSWER),
}

DIRECTIONS: dict[str, Direction] = {
    "inbound": Direction.INBOUND,
    "outbound": Direction.OUTBOUND,
}

_B64URL = re.compile(r"^[A-Za-z0-9_-]*\Z")
# Vonage writes phone numbers in international form without the "+".
_INTERNATIONAL_DIGITS = re.compile(r"^[1-9]\d{6,14}\Z")


class TokenInvalid(ValueError):
    pass


def _b64url(segment: str) -> bytes:
    if not _B64URL.match(segment):
        raise TokenInvalid("not base64url")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except ValueError:  # binascii.Error: a length no padding can mend
        raise TokenInvalid("not base64url") from None


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = jsontext.loads(raw)
    except ValueError:  # bad UTF-8 or JSON, or an over-long integer
        raise TokenInvalid("segment is not JSON") from None
    if not isinstance(value, dict):
        raise TokenInvalid("segment is not a JSON object")
    return value


def verify_hs256(token: str, key: bytes) -> dict[str, Any]:
    """The claims of a compact JWS signed HS256 with ``key``, or TokenInvalid."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenInvalid("a JWT has three dot-separated parts")
    header = _json_object(_b64url(parts[0]))
    _b64url(parts[1])  # validated before it is signed over
    if header.get("alg") != "HS256":
        raise TokenInvalid(f"alg {header.get('alg')!r} is not HS256")
    expected = hmac.new(key, f"{parts[0]}.{parts[1]}".encode("ascii"), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, _b64url(parts[2])):
        raise TokenInvalid("signature does not match")
    return _json_object(_b64url(parts[1]))


def verify(secret: str, authorization: str | None, body: bytes, now_s: int, window_s: int) -> None:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise WebhookError(
            401, "missing Authorization: Bearer token (are signed callbacks on?)", "no-signature"
        )
    try:
        claims = verify_hs256(token.strip(), secret.encode())
    except TokenInvalid as exc:
        raise WebhookError(403, f"Bearer token refused: {exc}", "bad-signature") from None
    claimed = claims.get("payload_hash")
    if not isinstance(claimed, str):
        raise WebhookError(403, "token has no payload_hash claim", "bad-signature")
    if not hmac.compare_digest(hashlib.sha256(body).hexdigest(), claimed.lower()):
        raise WebhookError(403, "payload_hash does not match the request body", "bad-signature")
    iat = claims.get("iat")
    if isinstance(iat, bool) or not isinstance(iat, int):
        raise WebhookError(403, "token has no numeric iat claim", "bad-signature")
    if abs(now_s - iat) > window_s:
        raise WebhookError(403, f"token iat is outside the {window_s}-second window around now", "stale")
    exp = claims.get("exp")
    if isinstance(exp, int) and not isinstance(exp, bool) and exp <= now_s:
        raise WebhookError(403, "token has expired", "stale")


def international(number: str | None) -> str | None:
    if number is not None and _INTERNATIONAL_DIGITS.match(number):
        return "+" + number
    return number


def parse(body: bytes, now_ms: int) -> list[CallEvent] | Ignored:
    """A verified event as a call event."""
    try:
        data = jsontext.loads(body)
    except ValueError as exc:  # bad UTF-8 or JSON, or an over-long integer
        raise WebhookError(400, f"body is not JSON: {exc}", "bad-payload") from None
    if not isinstance(data, dict):
        raise WebhookError(400, "body must be a JSON object", "bad-payload")
    status = data.get("status")
    if not isinstance(status, str) or status not in STATUSES:
        return Ignored(f"status {status!r} is not a call status")
    kind = data.get("direction")
    if not isinstance(kind, str) or kind not in DIRECTIONS:
        return Ignored(f"direction {kind!r} is neither inbound nor outbound")
    phase, end_status = STATUSES[status]
    timestamp = data.get("timestamp")
    event = CallEvent(
        call_id=call_id(data.get("uuid"), "uuid"),
        direction=DIRECTIONS[kind],
        phase=phase,
        at_ms=now_ms if timestamp is None else iso_ms(timestamp, "timestamp"),
        from_number=international(optional_text(data.get("from"), "from", 128)),
        to_number=international(optional_text(data.get("to"), "to", 128)),
        end_status=end_status,
        duration_ms=seconds_ms(data.get("duration"), "duration") if phase is Phase.ENDED else None,
    )
    return with_implied_answer(event)


# -- recordings ---------------------------------------------------------------
def recording(body: bytes) -> RecordingEvent | Ignored:
    """A verified record-action event (signed like the call's other webhooks) as a recording.

    Vonage's NCCO ``record`` action posts to its ``eventUrl``:
    ``recording_url`` (``https://api.nexmo.com/v1/files/<id>``, fetched with
    the application's JWT), ``recording_uuid``, ``conversation_uuid``,
    ``start_time``, ``end_time``, ``size``. It names the conversation, not
    the call leg: the leg is the one whose status events carried that
    ``conversation_uuid`` (``gateway.recordings`` keeps the pair). Vonage's
    default format is MP3; the served type follows the file's own.
    """
    try:
        data = jsontext.loads(body)
    except ValueError as exc:
        raise WebhookError(400, f"body is not JSON: {exc}", "bad-payload") from None
    if not isinstance(data, dict):
        raise WebhookError(400, "body must be a JSON object", "bad-payload")
    if "recording_url" not in data:
        return Ignored("not a recording event (no recording_url)")
    conversation = call_id(data.get("conversation_uuid"), "conversation_uuid")
    leg = data.get("uuid")
    return RecordingEvent(
        provider="vonage",
        call_id=call_id(leg, "uuid") if leg is not None else "",
        recording_id=recording_id(data.get("recording_uuid"), "recording_uuid"),
        media_url=https_url(data.get("recording_url"), "recording_url"),
        content_type=CONTENT_TYPES["mp3"],
        conversation_id=conversation,
    )


def conversation(body: bytes) -> tuple[str, str] | None:
    """(call leg uuid, conversation_uuid) of a verified status event, when it has both."""
    try:
        data = jsontext.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    try:
        # call_id refuses what is not an id; the refusal's wording is not used here.
        return call_id(data.get("uuid"), "uuid"), call_id(data.get("conversation_uuid"), "conversation_uuid")
    except WebhookError:
        return None
