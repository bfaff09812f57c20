"""Brokers: where call state lives and how events reach the streams.

- ``base``: the interface (``Broker``) and its errors; the streams of this
  process and the replay logic both brokers share.
- ``stream_queue``: one SSE stream's bounded queue (replay, then live).
- ``memory``: the embedded broker, one process, no Redis.
- ``redis``: the shared broker, any number of instances on one Redis.
- ``shared_logins``: failed logins counted in Redis for every instance
  (its scripts; ``redis`` runs them).
- ``coordination`` / ``redis_coordination``: what SIP instances share (who
  holds which AOR, call ids, PUBLISH records), embedded / on Redis
  (docs/scaling.md).
- ``dial_holds``: the ends a SIP click-to-dial holds for its sipfrag's
  reason, on any instance (embedded here, on Redis in ``redis``).

The state codec and event JSON come from ``gateway.wire``; a broker stores
and carries them, it decides nothing about calls.
"""

from __future__ import annotations

from gateway.broker.base import Broker, BrokerUnavailable, Conflict
from gateway.broker.stream_queue import StreamQueue
from gateway.config import Settings


def make_broker(settings: Settings) -> Broker:
    if settings.redis_url:
        from gateway.broker.redis import RedisBroker

        return RedisBroker(settings)
    from gateway.broker.memory import MemoryBroker

    return MemoryBroker(settings)


__all__ = ["Broker", "BrokerUnavailable", "Conflict", "StreamQueue", "make_broker"]
