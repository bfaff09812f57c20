"""Telnyx Call Control webhooks: verify the Ed25519 signature, read, map.

Sans-I/O. Telnyx signs ``"{telnyx-timestamp}|{raw body}"`` with its
Ed25519 key; the account's public key (Mission Control, Keys & Credentials)
checks it. The timestamp is part of what is signed, so a window around now
refuses replays. Deliveries may repeat and arrive out of order; each event
carries ``occurred_at``, which becomes the signal's time so the model orders
them.
"""

from __future__ import annotations

import base64
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway import jsontext
from gateway.model import Direction, EndStatus, Phase
from gateway.parsing import parse_decimal
from gateway.sources.endstatus import status_for_code
from gateway.sources.webhooks import dialled
from gateway.sources.webhooks.common import (
    CallEvent,
    Ignored,
    WebhookError,
    call_id,
    iso_ms,
    optional_text,
    sip_code,
)
from gateway.sources.webhooks.recording import CONTENT_TYPES, RecordingEvent, https_url, recording_id

PHASES: dict[str, Phase] = {
    "call.initiated": Phase.RINGING,
    "call.answered": Phase.ANSWERED,
    "call.hangup": Phase.ENDED,
}

DIRECTIONS: dict[str, Direction] = {
    "incoming": Direction.INBOUND,
    "outgoing": Direction.OUTBOUND,
}

# hangup_cause -> proposed end status. "originator_cancel" is the caller
# giving up: CANCELED for our outbound call, MISSED (by the model's rule for
# unanswered inbound calls) when someone called us. "unspecified" and causes
# Telnyx may add later fall back to sip_hangup_cause.
HANGUP_CAUSES: dict[str, EndStatus] = {
    "normal_clearing": EndStatus.COMPLETED,
    "time_limit": EndStatus.COMPLETED,
    "user_busy": EndStatus.BUSY,
    "timeout": EndStatus.NO_ANSWER,
    "no_answer": EndStatus.NO_ANSWER,
    "call_rejected": EndStatus.REJECTED,
    "originator_cancel": EndStatus.CANCELED,
    "not_found": EndStatus.FAILED,
}


def hangup_status(cause: str | None, sip: int | None) -> EndStatus | None:
    if cause in HANGUP_CAUSES:
        return HANGUP_CAUSES[cause]
    by_sip = status_for_code(sip)
    if by_sip is not None:
        return by_sip
    # Telnyx could not say why the call ended: that is a failure, unless
    # the model knows the call was answered and ended normally after all.
    return EndStatus.FAILED if cause == "unspecified" else None


def load_public_key(encoded: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(encoded))


def verify(
    key: Ed25519PublicKey,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now_s: int,
    window_s: int,
) -> None:
    if not timestamp or not signature:
        raise WebhookError(401, "missing telnyx-signature-ed25519 or telnyx-timestamp header", "no-signature")
    if parse_decimal(timestamp, 12) is None:
        raise WebhookError(403, "telnyx-timestamp is not a Unix time in seconds", "bad-signature")
    try:
        raw = base64.b64decode(signature, validate=True)
    except ValueError:  # binascii.Error, or a character outside ASCII
        raise WebhookError(403, "telnyx-signature-ed25519 is not base64", "bad-signature") from None
    try:
        key.verify(raw, timestamp.encode() + b"|" + body)
    except InvalidSignature:
        raise WebhookError(
            403,
            "telnyx-signature-ed25519 does not match (is GATEWAY_TELNYX_PUBLIC_KEY right?)",
            "bad-signature",
        ) from None
    # Checked after the signature, so the message can say "stale" only
    # about a timestamp Telnyx really sent.
    if abs(now_s - int(timestamp)) > window_s:
        raise WebhookError(
            403, f"telnyx-timestamp is outside the {window_s}-second window around now", "stale"
        )


def parse(body: bytes) -> list[CallEvent] | Ignored:
    """A verified delivery as a call event."""
    try:
        doc = jsontext.loads(body)
    except ValueError as exc:  # bad UTF-8 or JSON, or an over-long integer
        raise WebhookError(400, f"body is not JSON: {exc}", "bad-payload") from None
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, dict):
        raise WebhookError(400, 'body has no "data" object', "bad-payload")
    event_type = data.get("event_type")
    if not isinstance(event_type, str) or event_type not in PHASES:
        return Ignored(f"event_type {event_type!r} does not change a call's phase")
    payload: Any = data.get("payload")
    if not isinstance(payload, dict):
        raise WebhookError(400, 'data has no "payload" object', "bad-payload")
    phase = PHASES[event_type]
    leg = payload.get("call_leg_id") or payload.get("call_control_id")
    direction: Direction | None = None
    if payload.get("direction") is not None:
        if not isinstance(payload["direction"], str) or payload["direction"] not in DIRECTIONS:
            return Ignored(f"direction {payload['direction']!r} is neither incoming nor outgoing")
        direction = DIRECTIONS[payload["direction"]]
    sip = sip_code(payload.get("sip_hangup_cause"))
    cause = payload.get("hangup_cause")
    event = CallEvent(
        call_id=call_id(leg, "call_leg_id"),
        direction=direction,
        phase=phase,
        at_ms=iso_ms(data.get("occurred_at"), "occurred_at"),
        from_number=optional_text(payload.get("from"), "from"),
        to_number=optional_text(payload.get("to"), "to"),
        # The caller's name; on an outgoing leg it would be our own.
        remote_name=optional_text(payload.get("caller_id_name"), "caller_id_name", 128)
        if direction is Direction.INBOUND
        else None,
        end_status=hangup_status(cause if isinstance(cause, str) else None, sip)
        if phase is Phase.ENDED
        else None,
        sip_code=sip,
        # Our tag, when the gateway dialled this leg (dialled.py); Telnyx
        # echoes client_state in every webhook of the leg, inside the signed body.
        dial=dialled.from_client_state(payload.get("client_state")),
        control_id=optional_text(payload.get("call_control_id"), "call_control_id"),
    )
    return [event]


# -- recordings ---------------------------------------------------------------
RECORDING_SAVED = "call.recording.saved"


def is_recording(body: bytes) -> bool:
    """Whether a delivery names itself ``call.recording.saved`` (checked again, signed, when read)."""
    try:
        doc = jsontext.loads(body)
    except ValueError:
        return False
    data = doc.get("data") if isinstance(doc, dict) else None
    return isinstance(data, dict) and data.get("event_type") == RECORDING_SAVED


def recording(body: bytes) -> RecordingEvent | Ignored:
    """A verified ``call.recording.saved`` delivery as a recording.

    Telnyx's "Call Recording Saved" callback: ``payload.call_leg_id``,
    ``channels`` (``single`` or ``dual``), ``recording_urls`` and
    ``public_recording_urls`` (``{"wav": ..., "mp3": ...}``), ``recording_id``
    (in the payloads its storage guide shows), and ``client_state``.
    ``recording_urls`` are presigned and expire (``X-Amz-Expires=600`` in
    Telnyx's example), ``public_recording_urls`` are set only for public
    recordings: a public URL is kept when there is one. WAV before MP3, the
    form HubSpot transcribes. The URL carries its own authorisation.
    """
    try:
        doc = jsontext.loads(body)
    except ValueError as exc:
        raise WebhookError(400, f"body is not JSON: {exc}", "bad-payload") from None
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, dict) or data.get("event_type") != RECORDING_SAVED:
        return Ignored("not a call.recording.saved event")
    payload: Any = data.get("payload")
    if not isinstance(payload, dict):
        raise WebhookError(400, 'data has no "payload" object', "bad-payload")
    chosen: tuple[str, str] | None = None
    for field in ("public_recording_urls", "recording_urls"):
        urls = payload.get(field)
        if not isinstance(urls, dict):
            continue
        for kind in ("wav", "mp3"):
            if urls.get(kind):
                chosen = (https_url(urls[kind], f"{field}.{kind}"), kind)
                break
        if chosen:
            break
    if chosen is None:
        raise WebhookError(
            400, "neither recording_urls nor public_recording_urls has a wav or mp3", "bad-payload"
        )
    leg = payload.get("call_leg_id") or payload.get("call_control_id")
    raw_id = payload.get("recording_id") or data.get("id")
    return RecordingEvent(
        provider="telnyx",
        call_id=call_id(leg, "call_leg_id"),
        recording_id=recording_id(raw_id, "recording_id"),
        media_url=chosen[0],
        content_type=CONTENT_TYPES[chosen[1]],
        channels=2 if payload.get("channels") == "dual" else 1,
        dial=dialled.from_client_state(payload.get("client_state")),
    )
