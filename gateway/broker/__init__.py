"""Brokers: where call state lives and how events reach the streams."""

from __future__ import annotations

from gateway.broker.base import Broker, Envelope, Subscription
from gateway.config import Settings


def make_broker(settings: Settings) -> Broker:
    if settings.redis_url:
        from gateway.broker.redis import RedisBroker

        return RedisBroker(settings)
    from gateway.broker.memory import MemoryBroker

    return MemoryBroker(settings)


__all__ = ["Broker", "Envelope", "Subscription", "make_broker"]
