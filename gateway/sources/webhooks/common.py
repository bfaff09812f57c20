"""What the three CPaaS adapters share: the event they read and how it finds its user.

Sans-I/O. A provider module verifies its signature and reads its payload
into a ``CallEvent`` (one call leg as the provider sees it, no user yet);
``resolve`` turns that into a model ``Signal`` for the user whose number is
on the user's side of the call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime

from gateway.model import Direction, EndStatus, Phase, Signal
from gateway.parsing import parse_decimal
from gateway.users.directory import Directory
from gateway.users.phone import to_e164

# Provider call ids are opaque; refuse only what could not be one.
_CALL_ID = re.compile(r"^[\x21-\x7e]{1,128}\Z")


class WebhookError(ValueError):
    """A refused delivery: HTTP status, one precise sentence and a metric label."""

    def __init__(self, status: int, message: str, reason: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason


@dataclass(frozen=True)
class CallEvent:
    """One provider event about one call leg, before the user is known.

    ``direction`` is None when the provider's event does not say (Telnyx's
    answered and hangup events); ``resolve`` then infers it from which of
    the two numbers belongs to a user.
    """

    call_id: str
    direction: Direction | None
    phase: Phase
    at_ms: int
    from_number: str | None
    to_number: str | None
    remote_name: str | None = None
    end_status: EndStatus | None = None
    sip_code: int | None = None
    duration_ms: int | None = None
    # A leg of a call the gateway dialled, as the provider carried our tag
    # back (docs/dialling.md#joining); None for every other call.
    dial: DialTag | None = None
    # The provider's handle for commands on this leg (Telnyx call_control_id).
    control_id: str | None = None


@dataclass(frozen=True)
class DialTag:
    """Which dialled call a provider's event is about, and which of its two legs.

    ``user``: the call to the user's own phone, placed first; ``target``: the
    call to the number dialled, placed once the user answered.
    """

    call_id: str  # the dial's id: its call key is ``dial:<call_id>``
    leg: str

    @property
    def dial_key(self) -> str:
        return f"dial:{self.call_id}"


@dataclass(frozen=True)
class Ignored:
    """A verified event the gateway has no use for (answered 2xx, counted)."""

    reason: str
    outcome: str = "ignored"


def with_implied_answer(event: CallEvent) -> list[CallEvent]:
    """The event, preceded by the answer a completed call with a duration implies.

    A call that completed after talking for N seconds was answered N
    seconds before it ended. Saying so keeps the call COMPLETED (not MISSED
    or CANCELED) when the provider's answered event is late, lost, or was
    never subscribed to (a Twilio number's status callback reports only the
    end of the call).
    """
    if event.phase is not Phase.ENDED or event.end_status is not EndStatus.COMPLETED:
        return [event]
    if not event.duration_ms:
        return [event]
    answered = replace(
        event,
        phase=Phase.ANSWERED,
        at_ms=event.at_ms - event.duration_ms,
        end_status=None,
        sip_code=None,
    )
    return [answered, event]


def call_id(value: object, field: str) -> str:
    if not isinstance(value, str) or not _CALL_ID.match(value):
        raise WebhookError(400, f"{field} must be 1-128 printable characters", "bad-payload")
    return value


def optional_text(value: object, field: str, limit: int = 256) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise WebhookError(400, f"{field} must be a string of at most {limit} characters", "bad-payload")
    return value


def iso_ms(value: object, field: str) -> int:
    """Epoch milliseconds of an ISO-8601 time such as ``2026-11-24T23:50:01.123456Z``."""
    if not isinstance(value, str):
        raise WebhookError(400, f"{field} must be an ISO-8601 time", "bad-payload")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise WebhookError(400, f"{field} {value!r} is not an ISO-8601 time", "bad-payload") from None
    if parsed.tzinfo is None:
        raise WebhookError(400, f"{field} {value!r} has no time zone", "bad-payload")
    return int(parsed.timestamp() * 1000)


def seconds_ms(value: object, field: str) -> int | None:
    """A duration in whole seconds (providers send it as a string or a number)."""
    if value is None or value == "":
        return None
    seconds = parse_decimal(str(value), 9)
    if seconds is None:
        raise WebhookError(400, f"{field} must be a whole number of seconds", "bad-payload")
    return seconds * 1000


def sip_code(value: object) -> int | None:
    # A code arrives as a string or a JSON integer; str() of any other JSON
    # value (true, 4.86e2, null, a list or an object) is never bare digits.
    code = parse_decimal(str(value), 3)
    return code if code is not None and 100 <= code <= 699 else None


def resolve(event: CallEvent, source: str, directory: Directory) -> Signal | Ignored:
    """The event as a signal for the user on the user's side of the call.

    Inbound calls reach the user's number (To); outbound calls present it
    (From). A number no user has is not an error: the provider gets a 2xx
    and stops retrying, and the call is left out.
    """
    region = directory.default_region
    from_number = to_e164(event.from_number, region)
    to_number = to_e164(event.to_number, region)
    direction = event.direction
    if direction is None:
        # Prefer inbound when both numbers are users': that is how the
        # provider's initiating event describes a call reaching a number.
        if to_number and directory.by_number(to_number):
            direction = Direction.INBOUND
        elif from_number and directory.by_number(from_number):
            direction = Direction.OUTBOUND
        else:
            return Ignored(f"no user has number {to_number} or {from_number}", "unknown-number")
    ours = to_number if direction is Direction.INBOUND else from_number
    user = directory.by_number(ours) if ours else None
    if user is None:
        side = "To" if direction is Direction.INBOUND else "From"
        return Ignored(f"no user has number {ours} ({side} of an {direction.value} call)", "unknown-number")
    return Signal(
        source=source,
        call_id=event.call_id,
        user_id=user.id,
        direction=direction,
        phase=event.phase,
        at_ms=event.at_ms,
        from_number=from_number,
        to_number=to_number,
        remote_name=event.remote_name,
        end_status=event.end_status if event.phase is Phase.ENDED else None,
        sip_code=event.sip_code if event.phase is Phase.ENDED else None,
        duration_ms=event.duration_ms,
    )


def signals_for(
    parsed: list[CallEvent] | Ignored, source: str, directory: Directory
) -> list[Signal] | Ignored:
    """All of a delivery's signals, or why none: a delivery is taken whole or not at all."""
    if isinstance(parsed, Ignored):
        return parsed
    signals: list[Signal] = []
    for event in parsed:
        result = resolve(event, source, directory)
        if isinstance(result, Ignored):
            return result
        signals.append(result)
    return signals
