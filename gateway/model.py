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

# The order in which a call's SDK events may be emitted.
EVENT_ORDER = (
    "incomingCall",
    "outgoingCall",
    "callAnswered",
    "callTransferred",
    "callEnded",
    "callCompleted",
)


@dataclass(frozen=True)
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


@dataclass(frozen=True)
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


@dataclass(frozen=True)
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

    # -- derived views -----------------------------------------------------
    @property
    def call_direction(self) -> Direction:
        return Direction(self.direction[2])

    def end_status(self) -> EndStatus | None:
        if self.end is None:
            return None
        return normalise_end_status(self.call_direction, self.answered_ms is not None, self.end.status)

    def call_duration_ms(self) -> int:
        if self.duration_ms is not None:
            return self.duration_ms
        if self.answered_ms is not None and self.end is not None:
            return max(0, self.end.at_ms - self.answered_ms)
        return 0


def normalise_end_status(direction: Direction, answered: bool, proposed: EndStatus | None) -> EndStatus:
    """Make a source's end status consistent with what the call went through.

    A source proposes; the model knows whether the call was answered and
    which way it went. Answered calls cannot be missed or unanswered; an
    inbound call nobody answered is MISSED unless the user actively refused
    it (BUSY, REJECTED) or it failed; an outbound call we gave up on is
    CANCELED.
    """
    if answered:
        return EndStatus.FAILED if proposed is EndStatus.FAILED else EndStatus.COMPLETED
    if direction is Direction.INBOUND:
        if proposed in (EndStatus.BUSY, EndStatus.REJECTED, EndStatus.FAILED):
            return proposed
        return EndStatus.MISSED
    if proposed in (None, EndStatus.COMPLETED, EndStatus.MISSED):
        return EndStatus.CANCELED
    return proposed


def merge(state: CallState | None, signal: Signal) -> CallState:
    """Fold one signal's facts into the state (commutative, idempotent)."""
    rank = int(signal.phase)

    def fact(value: str | None) -> Fact | None:
        return None if value is None else (signal.at_ms, rank, value)

    direction = (signal.at_ms, rank, signal.direction.value)
    if state is None:
        state = CallState(
            call_key=signal.call_key,
            user_id=signal.user_id,
            direction=direction,
            first_seen_ms=signal.at_ms,
        )
    else:
        state = replace(
            state,
            direction=min(state.direction, direction),
            first_seen_ms=min(state.first_seen_ms, signal.at_ms),
        )
    answered_ms = state.answered_ms
    end = state.end
    if signal.phase is Phase.ANSWERED:
        answered_ms = signal.at_ms if answered_ms is None else min(answered_ms, signal.at_ms)
    if signal.phase is Phase.ENDED:
        new_end = EndFact(signal.at_ms, signal.end_status, signal.sip_code, signal.transferred)
        end = new_end if end is None else min(end, new_end, key=EndFact.key)
    duration = state.duration_ms
    if signal.duration_ms is not None:
        duration = signal.duration_ms if duration is None else max(duration, signal.duration_ms)
    return replace(
        state,
        from_number=_merge(state.from_number, fact(signal.from_number)),
        to_number=_merge(state.to_number, fact(signal.to_number)),
        remote_name=_merge(state.remote_name, fact(signal.remote_name)),
        answered_ms=answered_ms,
        end=end,
        duration_ms=duration,
    )


def due_events(state: CallState) -> list[SdkEvent]:
    """The SDK events the state calls for that were not emitted yet."""
    out: list[SdkEvent] = []
    done = set(state.emitted)
    call_id = state.call_key
    start = "incomingCall" if state.call_direction is Direction.INBOUND else "outgoingCall"
    # One start per call, even if sources disagree on the direction later.
    if not done & {"incomingCall", "outgoingCall"}:
        out.append(
            SdkEvent(
                start,
                {
                    "externalCallId": call_id,
                    "fromNumber": fact_value(state.from_number) or "",
                    "toNumber": fact_value(state.to_number) or "",
                    "callStartTime": state.first_seen_ms,
                    "createEngagement": True,
                },
            )
        )
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
    return replace(merged, emitted=merged.emitted + tuple(e.type for e in events)), events


class EngagementConflict(ValueError):
    """HubSpot reported a different engagement for a call that has one."""


def attach_engagement(state: CallState, engagement_id: int) -> CallState:
    if state.engagement_id not in (None, engagement_id):
        raise EngagementConflict(f"call {state.call_key} already has engagement {state.engagement_id}")
    return replace(state, engagement_id=engagement_id)
