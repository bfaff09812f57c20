"""Twilio Voice status callbacks: verify ``X-Twilio-Signature``, read, map.

Sans-I/O. Twilio signs each request with HMAC-SHA1 keyed by the account's
auth token over the URL it requested followed by every POST parameter's
name and value, sorted; the digest is sent base64-encoded. A JSON body is
signed through the URL instead: its hex SHA-256 rides in a ``bodySHA256``
query parameter. Twilio's own validators accept the URL both with and
without an explicit port (proxies add or drop ``:443``), and so do we.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from gateway import jsontext
from gateway.model import Direction, EndStatus, Phase
from gateway.parsing import parse_decimal
from gateway.sources.webhooks.common import (
    CallEvent,
    Ignored,
    WebhookError,
    call_id,
    optional_text,
    seconds_ms,
    sip_code,
    with_implied_answer,
)
from gateway.sources.webhooks.recording import CONTENT_TYPES, RecordingEvent, https_url, recording_id

# CallStatus -> (phase, proposed end status). The model makes the end status
# consistent with the call: an inbound call that ends "no-answer" or
# "canceled" without being answered becomes MISSED, an outbound "completed"
# that never got answered CANCELED.
STATUSES: dict[str, tuple[Phase, EndStatus | None]] = {
    "queued": (Phase.RINGING, None),
    "initiated": (Phase.RINGING, None),
    "ringing": (Phase.RINGING, None),
    "in-progress": (Phase.ANSWERED, None),
    "completed": (Phase.ENDED, EndStatus.COMPLETED),
    "busy": (Phase.ENDED, EndStatus.BUSY),
    "no-answer": (Phase.ENDED, EndStatus.NO_ANSWER),
    "canceled": (Phase.ENDED, EndStatus.CANCELED),
    "failed": (Phase.ENDED, EndStatus.FAILED),
}

# Direction is the call leg's, from Twilio's side: "inbound" reached a
# Twilio number (so the user's number is To), the outbound kinds were placed
# by the API or a <Dial> (the user's number is the caller ID, From).
DIRECTIONS: dict[str, Direction] = {
    "inbound": Direction.INBOUND,
    "outbound-api": Direction.OUTBOUND,
    "outbound-dial": Direction.OUTBOUND,
}


def signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """Twilio's signature of a request to ``url`` carrying ``params``."""
    # Sorting the (name, value) pairs orders by name, then repeated names by
    # value; identical pairs count once, as in Twilio's validators.
    data = url + "".join(name + value for name, value in sorted(set(params)))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def url_variants(url: str) -> list[str]:
    """The URL as given, with the scheme's default port added, and without any port."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    userinfo = parts.netloc.rpartition("@")[0]
    prefix = f"{userinfo}@" if userinfo else ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    with_port = urlunsplit(parts._replace(netloc=f"{prefix}{host}:{port}"))
    without_port = urlunsplit(parts._replace(netloc=f"{prefix}{host}"))
    return list(dict.fromkeys([url, with_port, without_port]))


def verify(auth_token: str, url: str, body: bytes, header: str | None) -> Mapping[str, str]:
    """Check the signature; return the request's parameters (form or JSON)."""
    if not header:
        raise WebhookError(401, "missing X-Twilio-Signature header", "no-signature")
    query = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    body_hash = query.get("bodySHA256")
    pairs: list[tuple[str, str]] = []
    if body_hash is not None:
        actual = hashlib.sha256(body).hexdigest()
        if not hmac.compare_digest(actual.encode(), body_hash.lower().encode("utf-8", "replace")):
            raise WebhookError(403, "bodySHA256 does not match the request body", "bad-signature")
    else:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise WebhookError(400, "form body is not UTF-8", "bad-payload") from None
        pairs = parse_qsl(text, keep_blank_values=True)
    presented = header.strip().encode()
    if not any(
        hmac.compare_digest(signature(auth_token, candidate, pairs).encode(), presented)
        for candidate in url_variants(url)
    ):
        raise WebhookError(
            403,
            f"X-Twilio-Signature does not match {url} (is GATEWAY_PUBLIC_URL the URL Twilio calls?)",
            "bad-signature",
        )
    if body_hash is None:
        return dict(pairs)
    return _json_params(body)


def _json_params(body: bytes) -> Mapping[str, str]:
    try:
        data = jsontext.loads(body)
    except ValueError as exc:  # bad UTF-8 or JSON, or an over-long integer
        raise WebhookError(400, f"body is not JSON: {exc}", "bad-payload") from None
    if not isinstance(data, dict):
        raise WebhookError(400, "JSON body must be an object", "bad-payload")
    return {str(k): str(v) for k, v in data.items() if isinstance(v, str | int) and not isinstance(v, bool)}


def event_time_ms(params: Mapping[str, str], now_ms: int) -> int:
    """``Timestamp`` (RFC 2822, whole seconds) or, if absent, the arrival time."""
    raw = params.get("Timestamp")
    if not raw:
        return now_ms
    try:
        parsed = parsedate_to_datetime(raw)
    except (ValueError, OverflowError):  # OverflowError: a year of twenty digits
        raise WebhookError(400, f"Timestamp {raw!r} is not an RFC 2822 date", "bad-payload") from None
    if parsed.tzinfo is None:
        raise WebhookError(400, f"Timestamp {raw!r} has no time zone", "bad-payload")
    return int(parsed.timestamp() * 1000)


def parse(params: Mapping[str, str], now_ms: int, max_age_ms: int) -> list[CallEvent] | Ignored:
    """A verified status callback as a call event.

    Twilio's signature has no time in it, so a captured request could be
    replayed forever; the signed ``Timestamp`` bounds that to the time the
    model remembers a call (older ones would start the call anew).
    """
    sid = call_id(params.get("CallSid"), "CallSid")
    status = params.get("CallStatus", "")
    if status not in STATUSES:
        return Ignored(f"CallStatus {status!r} is not a call progress status")
    kind = params.get("Direction", "")
    if kind not in DIRECTIONS:
        return Ignored(f"Direction {kind!r} is not one the gateway follows")
    at_ms = event_time_ms(params, now_ms)
    if now_ms - at_ms > max_age_ms:
        raise WebhookError(403, f"Timestamp {params.get('Timestamp')!r} is too old to accept", "stale")
    phase, end_status = STATUSES[status]
    event = CallEvent(
        call_id=sid,
        direction=DIRECTIONS[kind],
        phase=phase,
        at_ms=at_ms,
        from_number=optional_text(params.get("From"), "From", 128),
        to_number=optional_text(params.get("To"), "To", 128),
        # CNAM of the caller: someone else's name only on an inbound leg.
        remote_name=optional_text(params.get("CallerName"), "CallerName", 128)
        if DIRECTIONS[kind] is Direction.INBOUND
        else None,
        end_status=end_status,
        sip_code=sip_code(params.get("SipResponseCode")),
        duration_ms=seconds_ms(params.get("CallDuration"), "CallDuration") if phase is Phase.ENDED else None,
    )
    return with_implied_answer(event)


# -- recordings ---------------------------------------------------------------
def recording(params: Mapping[str, str]) -> RecordingEvent | Ignored:
    """A verified RecordingStatusCallback (signed like a status callback) as a recording.

    Twilio's "Recording status callback" parameters: ``CallSid``,
    ``RecordingSid``, ``RecordingUrl``, ``RecordingStatus`` (``in-progress``,
    ``completed``, ``absent``, ``failed``), ``RecordingChannels``. Only a
    completed recording can be played. ``RecordingUrl`` has no extension;
    Twilio's Recording resource docs say the URL with ``.wav`` returns the
    WAV file (``.mp3`` an MP3): WAV is the form HubSpot transcribes.
    """
    status = params.get("RecordingStatus", "")
    if status != "completed":
        return Ignored(f"RecordingStatus {status!r} is not a completed recording")
    url = https_url(params.get("RecordingUrl"), "RecordingUrl")
    if not url.endswith((".wav", ".mp3")):
        url += ".wav"
    channels = parse_decimal(params.get("RecordingChannels", ""), 1)
    return RecordingEvent(
        provider="twilio",
        call_id=call_id(params.get("CallSid"), "CallSid"),
        recording_id=recording_id(params.get("RecordingSid"), "RecordingSid"),
        media_url=url,
        content_type=CONTENT_TYPES["mp3" if url.endswith(".mp3") else "wav"],
        channels=channels or None,
    )
