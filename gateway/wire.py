"""The gateway's wire formats, in one place.

Sans-I/O. What the page receives (SSE frames, the JSON of each SDK event,
the call snapshot its UI shows), the event ids both brokers issue, and the
Redis codec of a call's state. The model knows calls and SDK events; how
they are written down for a browser or for Redis is decided here.

An event on the stream::

    id: <epoch>-<seq>
    event: sdk
    data: {"type": "incomingCall", "externalCallId": ..., "payload": {...}, "call": {...}}

``type`` is the SDK method, ``payload`` its argument as the SDK types it,
``call`` the snapshot. Besides events: ``retry:`` once at the start,
``: hb`` heartbeat comments, ``event: gap`` when the events after the
client's Last-Event-ID are no longer all held, and on a fresh stream
``event: hello`` with an ``id:`` that stands for "now".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from gateway.model import CallState, EndFact, EndStatus, Fact, SdkEvent, fact_value
from gateway.parsing import parse_decimal

# No check for cycles: what is encoded here is built here, as trees (the
# check costs a fifth of encoding an event).
_compact = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode


# -- event ids ---------------------------------------------------------------
EventId = tuple[int, int]


def parse_event_id(raw: str | None) -> EventId | None:
    """Event ids are ``<epoch>-<seq>`` (Redis stream ids have that shape too)."""
    if not raw:
        return None
    head, sep, tail = raw.strip().partition("-")
    # Both parts are unsigned 64-bit numbers in Redis; anything else is no id
    # of ours, and the stream starts fresh.
    first, second = parse_decimal(head, 20), parse_decimal(tail, 20)
    if not sep or first is None or second is None or max(first, second) >= 2**64:
        return None
    return first, second


def format_event_id(event_id: EventId) -> str:
    return f"{event_id[0]}-{event_id[1]}"


# -- events as the page receives them -----------------------------------------
@dataclass(frozen=True, slots=True)
class Envelope:
    """One event as it travels: its stream id and its JSON text.

    The JSON is made once when the event is emitted, never per stream.
    """

    id: str
    data: str


def call_snapshot(state: CallState) -> dict[str, Any]:
    """What the iframe's UI shows about a call (also the body of ``GET /api/calls/{id}``)."""
    status = state.end_status()
    phase = "ended" if state.end else "answered" if state.answered_ms else "ringing"
    return {
        "externalCallId": state.call_key,
        "direction": state.call_direction.value,
        "state": phase,
        "fromNumber": fact_value(state.from_number),
        "toNumber": fact_value(state.to_number),
        "remoteName": fact_value(state.remote_name),
        "startedAt": state.first_seen_ms,
        "answeredAt": state.answered_ms,
        "endedAt": state.end.at_ms if state.end else None,
        "endStatus": status.value if status else None,
        "engagementId": state.engagement_id,
        # "widget", "gateway" or null: which path logged the call in HubSpot
        # (docs/call-logging.md). A page never passes on a call the gateway logged.
        "loggedBy": state.logged_by,
    }


def encode_event(state: CallState, event: SdkEvent) -> str:
    """The ``data:`` of one SDK event, with the call as it stands after it."""
    return _compact(
        {
            "type": event.type,
            "externalCallId": state.call_key,
            "payload": event.payload,
            "call": call_snapshot(state),
        }
    )


def event_call_key(data: str) -> str | None:
    """The call an event's JSON (as ``encode_event`` wrote it) is about."""
    try:
        key = json.loads(data).get("externalCallId")
    except (ValueError, AttributeError):
        return None
    return key if isinstance(key, str) else None


# -- SSE framing ----------------------------------------------------------------
SSE_HEARTBEAT = b": hb\n\n"


def sse_opening(retry_ms: int, gap: bool, head_id: str | None) -> bytes:
    """What a stream starts with, before any event."""
    opening = f"retry: {retry_ms}\n: connected\n\n"
    if gap:
        opening += "event: gap\ndata: {}\n\n"
    if head_id:
        # Sets the client's last event id without being an SDK event.
        opening += f"event: hello\nid: {head_id}\ndata: {{}}\n\n"
    return opening.encode()


def sse_events(envelopes: list[Envelope]) -> bytes:
    return "".join(f"id: {e.id}\nevent: sdk\ndata: {e.data}\n\n" for e in envelopes).encode()


# -- the Redis codec of a call's state -----------------------------------------
def encode_state(state: CallState) -> str:
    """A call's whole state as compact JSON (facts with their times, and what was emitted)."""
    end = state.end
    return _compact(
        {
            "call_key": state.call_key,
            "user_id": state.user_id,
            "direction": list(state.direction),
            "first_seen_ms": state.first_seen_ms,
            "from_number": _fact_out(state.from_number),
            "to_number": _fact_out(state.to_number),
            "remote_name": _fact_out(state.remote_name),
            "answered_ms": state.answered_ms,
            "end": None
            if end is None
            else {
                "at_ms": end.at_ms,
                "status": end.status.value if end.status else None,
                "sip_code": end.sip_code,
                "transferred": end.transferred,
            },
            "duration_ms": state.duration_ms,
            "engagement_id": state.engagement_id,
            "emitted": list(state.emitted),
            "logged_by": state.logged_by,
        }
    )


def decode_state(raw: str) -> CallState:
    data = json.loads(raw)
    end = data["end"]
    direction = _fact_in(data["direction"])
    assert direction is not None
    return CallState(
        call_key=data["call_key"],
        user_id=data["user_id"],
        direction=direction,
        first_seen_ms=data["first_seen_ms"],
        from_number=_fact_in(data["from_number"]),
        to_number=_fact_in(data["to_number"]),
        remote_name=_fact_in(data["remote_name"]),
        answered_ms=data["answered_ms"],
        end=None
        if end is None
        else EndFact(
            at_ms=end["at_ms"],
            status=EndStatus(end["status"]) if end["status"] else None,
            sip_code=end["sip_code"],
            transferred=end["transferred"],
        ),
        duration_ms=data["duration_ms"],
        engagement_id=data["engagement_id"],
        emitted=tuple(data["emitted"]),
        # States written before call logging existed have no such field.
        logged_by=data.get("logged_by"),
    )


def _fact_out(fact: Fact | None) -> list[Any] | None:
    return None if fact is None else list(fact)


def _fact_in(raw: list[Any] | None) -> Fact | None:
    return None if raw is None else (int(raw[0]), int(raw[1]), str(raw[2]))
