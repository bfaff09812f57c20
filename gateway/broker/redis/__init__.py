"""The Redis broker (``RedisBroker``), in modules of one job each:

``scripts`` (the Lua scripts), ``keys`` (key and channel names),
``commands`` (one exchange under the deadline), ``topology`` (one server,
Sentinel or Cluster), ``calls`` (compare-and-set of a call's state),
``recovery`` (when Redis loses data), ``fanout`` (the pub/sub listener),
``dial_holds`` (a SIP click-to-dial's held ends), ``broker`` (the rest of
the broker interface).
"""

from gateway.broker.redis.broker import RedisBroker

__all__ = ["RedisBroker"]
