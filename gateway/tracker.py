"""Where signals meet the model and the broker: the sources' only door.

Every source hands its ``Signal``s here and never touches the broker, so
"each SDK event at most once, in order" is decided by the pure model for
every source alike, and the broker only stores and carries.

``BrokerUnavailable`` and ``Conflict`` pass through unchanged: a source
keeps its signals for later (SIP) or answers 503 so that the sender retries
(HTTP); the model makes the retry harmless.
"""

from __future__ import annotations

import time

from gateway.broker.base import Broker, BrokerUnavailable, Conflict
from gateway.model import CallState, SdkEvent, Signal, advance, attach_engagement
from gateway.ops.metrics import Metrics
from gateway.wire import Envelope

__all__ = ["BrokerUnavailable", "CallTracker", "Conflict", "UnknownCall"]

METRIC_SOURCES = frozenset({"ingest", "sip", "twilio", "telnyx", "vonage"})


class UnknownCall(LookupError):
    pass


class CallTracker:
    def __init__(self, broker: Broker, metrics: Metrics) -> None:
        self.broker = broker
        self.metrics = metrics

    async def observe(self, signal: Signal) -> list[Envelope]:
        """Advance the signal's call; return the events it emitted (maybe none)."""
        emitted: list[SdkEvent] = []

        def step(state: CallState | None) -> tuple[CallState | None, list[SdkEvent]]:
            new, events = advance(state, signal)
            emitted[:] = events  # the last attempt is the one that landed
            return new, events

        started = time.perf_counter()
        envelopes = await self.broker.transact(signal.user_id, signal.call_key, step)
        self.metrics.apply_seconds.observe(time.perf_counter() - started)
        # Ingest senders name their own sources; the label stays bounded.
        label = signal.source if signal.source in METRIC_SOURCES else "other"
        self.metrics.signals.labels(label).inc()
        for event in emitted:
            self.metrics.events.labels(event.type).inc()
        return envelopes

    async def observe_all(self, signals: list[Signal]) -> list[str]:
        """Observe each signal in turn; the ids of the events they emitted.

        On a broker failure the first signals may have been applied: sending
        them all again is harmless.
        """
        event_ids: list[str] = []
        for signal in signals:
            event_ids.extend(e.id for e in await self.observe(signal))
        return event_ids

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
