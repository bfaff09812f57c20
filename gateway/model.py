"""The pure call model: normalised signals in, SDK events out.

No I/O, no clock, no globals. A call's state holds *facts* merged with
commutative, idempotent operations (minimum by time), so any duplication or
reordering of the same signals ends in the same facts. What has already been
told to HubSpot is kept apart in ``emitted``: that part depends on arrival
order by nature (a late "answered" cannot be un-ended), but it only ever
grows, so no SDK event is emitted twice or out of order.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Any


class Direction(enum.StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class Phase(enum.IntEnum):
    RINGING = 1
    ANSWERED = 2
    ENDED = 3


class EndStatus(enum.StrEnum):
    """The SDK's ``EndStatus`` type, all seven members."""

    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    BUSY = "BUSY"
    NO_ANSWER = "NO_ANSWER"
    REJECTED = "REJECTED"
    MISSED = "MISSED"


# hs_call_status has no REJECTED or MISSED: a declined call reads as BUSY to
# the caller (603 and 486 end the same way for them) and a missed one is an
# unanswered one.
CALL_STATUS_FOR_END: dict[EndStatus, str] = {
    EndStatus.COMPLETED: "COMPLETED",
    EndStatus.FAILED: "FAILED",
    EndStatus.CANCELED: "CANCELED",
    EndStatus.BUSY: "BUSY",
    EndStatus.NO_ANSWER: "NO_ANSWER",
    EndStatus.REJECTED: "BUSY",
    EndStatus.MISSED: "NO_ANSWER",
}

# A ring that ended unanswered because another phone took the call carries
# this code: SIP's own "Call completed elsewhere" (the Reason cause 200 on a
# CANCEL, RFC 3326). With CANCELED it stays CANCELED on an inbound call
# instead of becoming MISSED (the PBX sources, docs/pbx.md#end-status).
ANSWERED_ELSEWHERE_CODE = 200

# The order in which a call's SDK events may be emitted.
EVENT_ORDER = (
    "incomingCall",
    "outgoingCall",
    "callAnswered",
    "callTransferred",
    "callEnded",
    "callCompleted",
)


# Slots: the model makes a few of these per signal, and reads their fields often.
@dataclass(frozen=True, slots=True)
class Signal:
    """One observation of a call by one source, already resolved to a user."""

    source: str
    call_id: str
    user_id: str
    direction: Direction
    phase: Phase
    at_ms: int
    from_number: str | None = None
    to_number: str | None = None
    remote_name: str | None = None
    end_status: EndStatus | None = None
    sip_code: int | None = None
    duration_ms: int | None = None
    transferred: bool = False

    @property
    def call_key(self) -> str:
        return f"{self.source}:{self.call_id}"


# A fact is the value together with the (time, phase) of the signal that gave
# it; merging keeps the smallest, which makes the merge order-independent.
Fact = tuple[int, int, str]


def _merge(old: Fact | None, new: Fact | None) -> Fact | None:
    if old is None:
        return new
    if new is None:
        return old
    return min(old, new)


def fact_value(fact: Fact | None) -> str | None:
    return None if fact is None else fact[2]


@dataclass(frozen=True, slots=True)
class EndFact:
    at_ms: int
    status: EndStatus | None
    sip_code: int | None
    transferred: bool

    def key(self) -> tuple[int, str, int, bool]:
        return (
            self.at_ms,
            self.status.value if self.status else "",
            self.sip_code or 0,
            self.transferred,
        )


@dataclass(frozen=True)
class SdkEvent:
    """An SDK call to make in the browser: method name and its argument."""

    type: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CallState:
    call_key: str
    user_id: str
    direction: Fact
    first_seen_ms: int
    from_number: Fact | None = None
    to_number: Fact | None = None
    remote_name: Fact | None = None
    answered_ms: int | None = None
    end: EndFact | None = None
    duration_ms: int | None = None
    engagement_id: int | None = None
    emitted: tuple[str, ...] = field(default=())
    # Which path logged the call in HubSpot: LOGGED_BY_WIDGET (the SDK made
    # the engagement) or LOGGED_BY_GATEWAY (docs/call-logging.md); None so far.
    logged_by: str | None = None

    # -- derived views -----------------------------------------------------
    @property
    def call_direction(self) -> Direction:
        # A dict look-up, not Enum's call (a value no direction has still raises ValueError).
        return _DIRECTIONS.get(self.direction[2]) or Direction(self.direction[2])

    def end_status(self) -> EndStatus | None:
        if self.end is None:
            return None
        return normalise_end_status(
            self.call_direction,
            self.answered_ms is not None,
            self.end.status,
            answered_elsewhere=self.end.sip_code == ANSWERED_ELSEWHERE_CODE,
        )

    def call_duration_ms(self) -> int:
        if self.duration_ms is not None:
            return self.duration_ms
        if self.answered_ms is not None and self.end is not None:
            return max(0, self.end.at_ms - self.answered_ms)
        return 0


_DIRECTIONS = {d.value: d for d in Direction}


def normalise_end_status(
    direction: Direction, answered: bool, proposed: EndStatus | None, *, answered_elsewhere: bool = False
) -> EndStatus:
    """Make a source's end status consistent with what the call went through.

    A source proposes; the model knows whether the call was answered and
    which way it went. Answered calls cannot be missed or unanswered; an
    inbound call nobody answered is MISSED unless the user actively refused
    it (BUSY, REJECTED) or it failed; an outbound call we gave up on is
    CANCELED. A ring another phone answered (``answered_elsewhere`` with
    CANCELED proposed) was not missed: it stays CANCELED.
    """
    if answered:
        return EndStatus.FAILED if proposed is EndStatus.FAILED else EndStatus.COMPLETED
    if direction is Direction.INBOUND:
        if answered_elsewhere and proposed is EndStatus.CANCELED:
            return proposed
        if proposed in (EndStatus.BUSY, EndStatus.REJECTED, EndStatus.FAILED):
            return proposed
        return EndStatus.MISSED
    if proposed in (None, EndStatus.COMPLETED, EndStatus.MISSED):
        return EndStatus.CANCELED
    return proposed


def merge(state: CallState | None, signal: Signal) -> CallState:
    """Fold one signal's facts into the state (commutative, idempotent)."""
    # One new state made directly, not a chain of ``replace`` copies: this
    # runs for every signal of every call.
    at_ms = signal.at_ms
    rank = int(signal.phase)
    direction = (at_ms, rank, signal.direction.value)
    from_number = None if signal.from_number is None else (at_ms, rank, signal.from_number)
    to_number = None if signal.to_number is None else (at_ms, rank, signal.to_number)
    remote_name = None if signal.remote_name is None else (at_ms, rank, signal.remote_name)
    answered_ms = at_ms if signal.phase is Phase.ANSWERED else None
    end = (
        EndFact(at_ms, signal.end_status, signal.sip_code, signal.transferred)
        if signal.phase is Phase.ENDED
        else None
    )
    duration = signal.duration_ms
    if state is None:
        return CallState(
            call_key=signal.call_key,
            user_id=signal.user_id,
            direction=direction,
            first_seen_ms=at_ms,
            from_number=from_number,
            to_number=to_number,
            remote_name=remote_name,
            answered_ms=answered_ms,
            end=end,
            duration_ms=duration,
        )
    if state.answered_ms is not None:
        answered_ms = state.answered_ms if answered_ms is None else min(state.answered_ms, answered_ms)
    if state.end is not None:
        end = state.end if end is None else min(state.end, end, key=EndFact.key)
    if state.duration_ms is not None:
        duration = state.duration_ms if duration is None else max(state.duration_ms, duration)
    return CallState(
        call_key=state.call_key,
        user_id=state.user_id,
        direction=min(state.direction, direction),
        first_seen_ms=min(state.first_seen_ms, at_ms),
        from_number=_merge(state.from_number, from_number),
        to_number=_merge(state.to_number, to_number),
        remote_name=_merge(state.remote_name, remote_name),
        answered_ms=answered_ms,
        end=end,
        duration_ms=duration,
        engagement_id=state.engagement_id,
        emitted=state.emitted,
        logged_by=state.logged_by,
    )


def _told(state: CallState, events: list[SdkEvent]) -> CallState:
    """The state with ``events`` added to what was told."""
    if not events:
        return state
    return CallState(
        call_key=state.call_key,
        user_id=state.user_id,
        direction=state.direction,
        first_seen_ms=state.first_seen_ms,
        from_number=state.from_number,
        to_number=state.to_number,
        remote_name=state.remote_name,
        answered_ms=state.answered_ms,
        end=state.end,
        duration_ms=state.duration_ms,
        engagement_id=state.engagement_id,
        emitted=state.emitted + tuple(e.type for e in events),
        logged_by=state.logged_by,
    )


def due_events(state: CallState) -> list[SdkEvent]:
    """The SDK events the state calls for that were not emitted yet."""
    out: list[SdkEvent] = []
    done = set(state.emitted)
    call_id = state.call_key
    start = "incomingCall" if state.call_direction is Direction.INBOUND else "outgoingCall"
    # One start per call, even if sources disagree on the direction later.
    if "incomingCall" not in done and "outgoingCall" not in done:
        caller = fact_value(state.from_number)
        payload: dict[str, Any] = {
            "externalCallId": call_id,
            "fromNumber": caller or "",
            "toNumber": fact_value(state.to_number) or "",
            "callStartTime": state.first_seen_ms,
            "createEngagement": True,
        }
        if not caller and start == "outgoingCall":
            # The SDK's outgoingCall takes no fromNumber when there is none
            # (a dial whose PBX presents its own caller id); incomingCall requires one.
            del payload["fromNumber"]
        out.append(SdkEvent(start, payload))
    ended_before = "callEnded" in done
    if state.answered_ms is not None and not ended_before and "callAnswered" not in done:
        out.append(SdkEvent("callAnswered", {"externalCallId": call_id}))
    if state.end is not None and not ended_before:
        if state.end.transferred:
            out.append(SdkEvent("callTransferred", {"externalCallId": call_id}))
        status = state.end_status()
        assert status is not None
        ended: dict[str, Any] = {"externalCallId": call_id, "callEndStatus": status.value}
        completed: dict[str, Any] = {
            "externalCallId": call_id,
            "engagementProperties": engagement_properties(state, status),
        }
        if state.engagement_id is not None:
            ended["engagementId"] = state.engagement_id
            completed["engagementId"] = state.engagement_id
        out.append(SdkEvent("callEnded", ended))
        out.append(SdkEvent("callCompleted", completed))
    return out


def engagement_properties(state: CallState, status: EndStatus) -> dict[str, Any]:
    direction = "INBOUND" if state.call_direction is Direction.INBOUND else "OUTBOUND"
    remote = fact_value(state.from_number if direction == "INBOUND" else state.to_number)
    who = fact_value(state.remote_name) or remote or "unknown number"
    props: dict[str, Any] = {
        "hs_timestamp": state.first_seen_ms,
        "hs_call_duration": str(state.call_duration_ms()),
        "hs_call_direction": direction,
        "hs_call_status": CALL_STATUS_FOR_END[status],
        "hs_call_title": f"{direction.title()} call {'from' if direction == 'INBOUND' else 'to'} {who}",
    }
    if state.from_number is not None:
        props["hs_call_from_number"] = fact_value(state.from_number)
    if state.to_number is not None:
        props["hs_call_to_number"] = fact_value(state.to_number)
    return props


def advance(state: CallState | None, signal: Signal) -> tuple[CallState, list[SdkEvent]]:
    """The transition function: new state and the SDK events to emit now."""
    if state is not None and (state.call_key != signal.call_key or state.user_id != signal.user_id):
        raise ValueError("signal belongs to another call")
    merged = merge(state, signal)
    events = due_events(merged)
    if events:
        # ``merged`` is new and nobody else holds it yet: what is told now is
        # written into it rather than into a copy of all its fields.
        object.__setattr__(merged, "emitted", merged.emitted + tuple(e.type for e in events))
    return merged, events


LOGGED_BY_WIDGET = "widget"
LOGGED_BY_GATEWAY = "gateway"


class EngagementConflict(ValueError):
    """HubSpot reported a different engagement for a call that has one."""


def attach_engagement(state: CallState, engagement_id: int) -> CallState:
    if state.engagement_id not in (None, engagement_id):
        raise EngagementConflict(f"call {state.call_key} already has engagement {state.engagement_id}")
    if state.engagement_id == engagement_id:
        return state
    # The first engagement reported is the widget's (the gateway keeps its
    # own through gateway.calllog), even if the gateway was about to log the
    # call: then the gateway updates this one instead of creating another.
    return replace(state, engagement_id=engagement_id, logged_by=LOGGED_BY_WIDGET)


def combine(one: CallState, other: CallState) -> CallState:
    """Two versions of one call's state as one: every fact of both, both logs of what was told.

    Commutative and idempotent like ``merge``. A store that forgot part of a
    call (Redis restarted empty, a replica that lagged) is given back what
    an instance still remembers, so nothing told is told again.
    """
    if one.call_key != other.call_key or one.user_id != other.user_id:
        raise ValueError("states of different calls")
    ends = [e for e in (one.end, other.end) if e is not None]
    answers = [a for a in (one.answered_ms, other.answered_ms) if a is not None]
    durations = [d for d in (one.duration_ms, other.duration_ms) if d is not None]
    told = set(one.emitted) | set(other.emitted)
    return replace(
        one,
        direction=min(one.direction, other.direction),
        first_seen_ms=min(one.first_seen_ms, other.first_seen_ms),
        from_number=_merge(one.from_number, other.from_number),
        to_number=_merge(one.to_number, other.to_number),
        remote_name=_merge(one.remote_name, other.remote_name),
        answered_ms=min(answers) if answers else None,
        end=min(ends, key=EndFact.key) if ends else None,
        duration_ms=max(durations) if durations else None,
        engagement_id=one.engagement_id if one.engagement_id is not None else other.engagement_id,
        logged_by=_later_path(one.logged_by, other.logged_by),
        emitted=tuple(t for t in EVENT_ORDER if t in told),
    )


def _later_path(one: str | None, other: str | None) -> str | None:
    # A call's path only moves on: none, then the gateway, then maybe the
    # widget (an engagement it reported after the gateway took over).
    for path in (LOGGED_BY_WIDGET, LOGGED_BY_GATEWAY):
        if path in (one, other):
            return path
    return None


def restore(stored: CallState | None, remembered: CallState) -> tuple[CallState, list[SdkEvent]]:
    """Put a remembered version of a call back into the stored one; the events now due.

    Normally none are: versions of one call only add to each other. One is
    due only when the stored state went on without something remembered
    (e.g. an end arrived where the answer had been forgotten); it is new,
    never a repeat.
    """
    state = remembered if stored is None else combine(stored, remembered)
    events = due_events(state)
    return _told(state, events), events
