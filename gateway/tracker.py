"""Where signals meet the model and the broker."""

from __future__ import annotations

import time

from gateway.broker.base import Broker, Envelope
from gateway.metrics import Metrics
from gateway.model import CallState, SdkEvent, Signal, advance, attach_engagement

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
