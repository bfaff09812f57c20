"""Where signals meet the model and the broker: the sources' only door.

Every source hands its ``Signal``s here and never touches the broker, so
"each SDK event at most once, in order" is decided by the pure model for
every source alike, and the broker only stores and carries.

``BrokerUnavailable`` and ``Conflict`` pass through unchanged: a source
keeps its signals for later (SIP) or answers 503 so that the sender retries
(HTTP); the model makes the retry harmless.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace

from gateway.broker.base import Broker, BrokerUnavailable, Conflict, Join, Step
from gateway.model import CallState, Direction, Phase, SdkEvent, Signal, advance, attach_engagement
from gateway.ops.metrics import Metrics
from gateway.wire import Envelope

__all__ = ["BrokerUnavailable", "CallTracker", "Conflict", "UnknownCall"]

METRIC_SOURCES = frozenset({"ingest", "sip", "twilio", "telnyx", "vonage", "dial", "demo"})


class UnknownCall(LookupError):
    pass


EndedListener = Callable[[CallState], Awaitable[None]]


class CallTracker:
    def __init__(self, broker: Broker, metrics: Metrics) -> None:
        self.broker = broker
        self.metrics = metrics
        # Ends waiting for a click-to-dial's reason, on every instance (gateway.sources.sip.click_to_dial).
        self.dial_holds = broker.dial_holds()
        # Told of the call's state after every signal that ends it (a repeated
        # end too), e.g. gateway.calllog, which logs the call in HubSpot.
        self.ended_listeners: list[EndedListener] = []

    async def observe(self, signal: Signal, *, dial_key: str | None = None) -> list[Envelope]:
        """Advance the signal's call; return the events it emitted (maybe none).

        A call seen for the first time may be a call the gateway dialled
        (docs/dialling.md#joining): then the signal advances that call. A
        source that knows it (the dialled call's key passed through the
        telephony and back) names it in ``dial_key``.
        """
        emitted: list[SdkEvent] = []
        landed: list[CallState] = []

        def step_for(current: Signal) -> Step:
            def step(state: CallState | None) -> tuple[CallState | None, list[SdkEvent]]:
                new, events = advance(state, current)
                emitted[:] = events  # the last attempt is the one that landed
                landed[:] = [new]
                return new, events

            return step

        outbound = signal.direction is Direction.OUTBOUND
        join = Join(
            rekey=lambda key: step_for(_as_call(signal, key)),
            remote=signal.to_number if outbound and signal.to_number else None,
            dial_key=dial_key,
        )
        started = time.perf_counter()
        envelopes = await self.broker.transact(signal.user_id, signal.call_key, step_for(signal), join)
        self.metrics.apply_seconds.observe(time.perf_counter() - started)
        # Ingest senders name their own sources; the label stays bounded.
        label = signal.source if signal.source in METRIC_SOURCES else "other"
        self.metrics.count_signal.inc(label)
        for event in emitted:
            self.metrics.count_event.inc(event.type)
        if signal.phase is Phase.ENDED and landed:
            await self._ended(landed[0])
        return envelopes

    async def _ended(self, state: CallState) -> None:
        for listener in self.ended_listeners:
            await listener(state)

    async def observe_all(self, signals: list[Signal]) -> list[str]:
        """Observe the signals; the ids of the events they emitted, in the signals' order.

        Each user's signals are observed in turn, in the order given; those
        of different users at once, so that a broker can advance them in
        one round trip (the Redis one pipelines what is asked together).
        On a broker failure some signals may have been applied: sending
        them all again is harmless.
        """
        by_user: dict[str, list[int]] = {}
        for index, signal in enumerate(signals):
            by_user.setdefault(signal.user_id, []).append(index)
        emitted: list[list[Envelope]] = [[] for _ in signals]

        async def observe_in_turn(indexes: list[int]) -> None:
            for index in indexes:
                emitted[index] = await self.observe(signals[index])

        if len(by_user) <= 1:
            await observe_in_turn(list(range(len(signals))))
        else:
            outcomes = await asyncio.gather(
                *(observe_in_turn(indexes) for indexes in by_user.values()), return_exceptions=True
            )
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome
        return [e.id for envelopes in emitted for e in envelopes]

    async def get_call(self, user_id: str, call_key: str) -> CallState | None:
        return await self.broker.get_call(user_id, call_key)

    async def set_engagement(self, user_id: str, call_key: str, engagement_id: int) -> CallState:
        """Remember the engagement HubSpot created, for the call's later events."""
        result: list[CallState] = []

        def step(state: CallState | None) -> tuple[CallState | None, list[SdkEvent]]:
            if state is None:
                raise UnknownCall(call_key)
            new = attach_engagement(state, engagement_id)
            result[:] = [new]
            return new, []

        await self.broker.transact(user_id, call_key, step)
        return result[0]

    async def change(
        self, user_id: str, call_key: str, change: Callable[[CallState], CallState]
    ) -> CallState:
        """Apply a pure change to a call's state atomically, emitting nothing; the state after it."""
        result: list[CallState] = []

        def step(state: CallState | None) -> tuple[CallState | None, list[SdkEvent]]:
            if state is None:
                raise UnknownCall(call_key)
            new = change(state)
            result[:] = [new]
            return new, []

        await self.broker.transact(user_id, call_key, step)
        return result[0]

    # -- dialling (gateway.dial) -------------------------------------------
    async def end_unanswered(self, signal: Signal) -> list[Envelope]:
        """Apply an end only to a call that exists, unanswered and not ended; the events emitted.

        One atomic step, like ``observe``: an answer or an end that any
        instance stored first wins, and then nothing changes (a dial's
        deadline must never end a call that is talking).
        """
        if signal.phase is not Phase.ENDED:
            raise ValueError("end_unanswered takes an ENDED signal")
        emitted: list[SdkEvent] = []
        landed: list[CallState] = []

        def step(state: CallState | None) -> tuple[CallState | None, list[SdkEvent]]:
            if state is None or state.answered_ms is not None or state.end is not None:
                emitted.clear()
                landed.clear()
                return state, []
            new, events = advance(state, signal)
            emitted[:] = events
            landed[:] = [new]
            return new, events

        envelopes = await self.broker.transact(signal.user_id, signal.call_key, step)
        for event in emitted:
            self.metrics.count_event.inc(event.type)
        if landed:
            await self._ended(landed[0])
        return envelopes

    async def expect_dial(self, user_id: str, remote: str, dial_key: str, seconds: float) -> None:
        """For ``seconds``, the user's first new outbound call to ``remote`` is ``dial_key``."""
        await self.broker.expect_dial(user_id, remote, dial_key, seconds)

    async def forget_dial(self, user_id: str, remote: str, dial_key: str) -> bool:
        return await self.broker.forget_dial(user_id, remote, dial_key)

    async def bind_call(self, user_id: str, call_key: str, dial_key: str) -> None:
        """A source's call key that is the dialled call ``dial_key`` (an exact correlation)."""
        await self.broker.bind_call(user_id, call_key, dial_key)

    async def claim_request(self, user_id: str, request_key: str, value: str, seconds: float) -> str | None:
        """Keep ``value`` for a dial request's idempotency key; the value already kept, if any."""
        return await self.broker.claim_request(user_id, request_key, value, seconds)

    async def settle_request(self, user_id: str, request_key: str, value: str | None, seconds: float) -> None:
        await self.broker.settle_request(user_id, request_key, value, seconds)

    async def take_dial_slot(self, user_id: str, limit: int, seconds: float) -> float | None:
        """Count a dial in the user's window, shared by instances: None, or the seconds to wait."""
        return await self.broker.take_slot(user_id, "dial", limit, seconds)


def _as_call(signal: Signal, call_key: str) -> Signal:
    """The signal as one of the call ``call_key`` (``source:call_id``)."""
    source, _, call_id = call_key.partition(":")
    return replace(signal, source=source, call_id=call_id)
