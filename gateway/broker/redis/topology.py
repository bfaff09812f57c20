"""The Redis a broker talks to: one server, a Sentinel set-up's primary, or a Cluster.

Makes the client and its scripts, and answers what differs between the
three: Redis's run id (every primary's on a cluster), the control channels
(one per primary on a cluster), plain or sharded pub/sub.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from typing import Any

from redis.asyncio.cluster import ClusterPubSub, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.cluster import get_node_name
from redis.commands.core import AsyncScript
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from gateway import redisconn
from gateway.broker.base import Broker
from gateway.broker.redis import scripts
from gateway.broker.redis.commands import COMMAND_SECONDS
from gateway.broker.redis.keys import Keys
from gateway.config import Settings

CONNECTIONS = 100  # per process, the pub/sub connection included
# On a cluster, how long the listener waits on one shard's connection
# before it looks at the next.
_SHARD_POLL_SECONDS = 0.01
# On a cluster, how often the listener asks which primaries hold slots: one
# added (and given slots) or removed since it connected makes it reconnect,
# to watch the cluster as it is now.
_PRIMARIES_SECONDS = 1.0


@functools.cache
def _first_tag_of_slot() -> tuple[int, ...]:
    """For each of the cluster's 16,384 slots, the smallest n whose hash tag ``{n}`` is in it.

    About 110,000 numbers cover every slot (a tenth of a second, once); a
    search for a primary's tag by trying numbers in turn up to some bound
    would miss the slots whose smallest number lies past it.
    """
    first = [-1] * REDIS_CLUSTER_HASH_SLOTS
    missing, n = len(first), 0
    while missing:
        slot = key_slot(str(n).encode())
        if first[slot] < 0:
            first[slot] = n
            missing -= 1
        n += 1
    return tuple(first)


class RedisTopology(Broker):
    """The client, its scripts and key names; what a broker needs of whichever Redis it has."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.history_size, settings.stream_buffer, settings.streams_per_user)
        assert settings.redis_url
        self._url = settings.redis_url
        self._prefix = settings.key_prefix
        self._ttl = settings.call_ttl_seconds
        # On a cluster live events go by sharded pub/sub (SSUBSCRIBE,
        # SPUBLISH): a message reaches the shard of its user only, rather
        # than every node.
        self._cluster = redisconn.is_cluster(self._url)
        self._keys = Keys(self._prefix, self._cluster)
        # More commands at once than connections (e.g. hundreds of streams
        # opening together) wait for one, rather than fail with "Too many
        # connections"; the caller's deadline bounds the wait. A Sentinel
        # set-up's primary is asked again after every lost connection: a
        # failover is a reconnect (and a check for lost writes,
        # ``LossRecovery._recover``).
        self._redis = redisconn.connect(self._url, max_connections=CONNECTIONS, wait_for_connection=True)
        self._advance = self._redis.register_script(
            scripts.ADVANCE.replace("'PUBLISH'", "'SPUBLISH'") if self._cluster else scripts.ADVANCE
        )
        self._claim = self._redis.register_script(scripts.CLAIM)
        self._forget = self._redis.register_script(scripts.FORGET)
        self._acknowledge = self._redis.register_script(scripts.ACKNOWLEDGE)
        self._take_slot = self._redis.register_script(scripts.TAKE_SLOT)
        self._check_epoch = self._redis.register_script(scripts.EPOCH)
        # Scripts other modules hand in to be run here (shared_logins).
        self._scripts: dict[str, AsyncScript] = {}
        # Redis's run id as last checked (``LossRecovery._recover``); on a
        # cluster, joined over the primaries, and each node's by name.
        self._run_id = ""
        self._node_run_ids: dict[str, str] = {}

    async def _close_client(self) -> None:
        await redisconn.close(self._redis)

    async def _run_ids(self) -> str:
        """Redis's run id; on a cluster, every primary's: one that restarted or failed over changes it."""
        if isinstance(self._redis, RedisCluster):
            nodes = await self._redis.info("server", target_nodes=RedisCluster.PRIMARIES)
            self._node_run_ids = {name: str(info.get("run_id", "")) for name, info in nodes.items()}
            return ",".join(sorted(self._node_run_ids.values()))
        info: dict[str, Any] = await self._redis.info("server")
        return str(info.get("run_id", ""))

    async def _checked_run_id(self, key: str, deadline: float) -> str:
        """The run id of the Redis (on a cluster: the primary) holding ``key``, as last checked.

        A primary this process has not met yet (added to the cluster since
        the listener last connected, which it will watch within
        ``_PRIMARIES_SECONDS``) is asked first: a write to it is checked too,
        never let through unchecked. ``deadline``: the caller's, in loop time.
        """
        if not isinstance(self._redis, RedisCluster):
            return self._run_id
        node = self._redis.get_node_from_key(key)
        if node is None:
            return ""
        known = self._node_run_ids.get(node.name)
        if known is None:
            async with asyncio.timeout_at(deadline):
                info: dict[str, Any] = await self._redis.info("server", target_nodes=node)
            known = self._node_run_ids[node.name] = str(info.get("run_id", ""))
        return known

    async def _checked_elsewhere(self, key: str, sent: str, found: str, deadline: float) -> bool:
        """Whether a script about ``key`` sent with run id ``sent`` found ``found``, another primary's.

        Then the client followed the key's slot from the node its slot map
        named to the one holding it now (MOVED, ASK), and nothing restarted;
        the node may be new here, and is then asked first, as
        ``_checked_run_id`` does. Only while ``sent`` is still the run id
        checked of its node: once a check found that node with another one
        (it restarted, and the check came first), ``found`` is that node's
        own and the step must wait as any other.
        """
        if not isinstance(self._redis, RedisCluster):
            return False
        if found not in self._node_run_ids.values():
            await self._checked_run_id(key, deadline)
        holders = {run_id: name for name, run_id in self._node_run_ids.items()}
        sent_to, found_at = holders.get(sent), holders.get(found)
        return sent_to is not None and found_at is not None and sent_to != found_at

    def _control_channels(self) -> list[str]:
        """The control channel; on a cluster, one in a slot of each primary holding slots.

        A primary's channel is tagged with the smallest ``n`` whose tag
        ``{n}`` falls in one of its slots: every instance, whatever it was
        started with, names the same channels for the same slot map.
        """
        base = self._keys.control()
        if not isinstance(self._redis, RedisCluster):
            return [base]
        first = _first_tag_of_slot()
        smallest: dict[str, int] = {}
        for slot, nodes in self._redis.nodes_manager.slots_cache.items():
            if nodes:
                primary = nodes[0].name
                smallest[primary] = min(first[slot], smallest.get(primary, first[slot]))
        return [f"{base}:{{{n}}}" for n in sorted(smallest.values())]

    async def _publish_control(self, message: str) -> None:
        # Every instance listens on every control channel: the first will do.
        channel = self._control_channels()[0]
        if isinstance(self._redis, RedisCluster):
            await self._redis.spublish(channel, message)
        else:
            await self._redis.publish(channel, message)


class ShardedSubscriber:
    """A cluster's pub/sub (redis-py's, one connection per shard), read as ``direct.Subscriber`` is.

    On a cluster live events go by sharded pub/sub; redis-py's client
    follows the slots from node to node.
    """

    def __init__(self, cluster: RedisCluster) -> None:
        self._cluster = cluster
        self._pubsub: ClusterPubSub | None = None
        # The primaries holding slots when it connected, and when (loop
        # time) to ask again (``_look_at_primaries``).
        self._primaries: set[str] = set()
        self._next_look = 0.0

    async def open(self) -> None:
        # Which node holds which slots, read again at every connection: the
        # client refreshes it by itself only when a command of its own meets
        # a moved slot, and the listener reconnects after a primary was
        # added or slots moved (a slot left a node), when the control
        # channels, the run ids checked and the shards to subscribe on must
        # be the cluster's as it is now.
        await self._cluster.initialize()
        await self._cluster.nodes_manager.initialize()
        self._primaries = {node.name for node in self._cluster.get_primaries()}
        self._next_look = asyncio.get_running_loop().time() + _PRIMARIES_SECONDS
        self._pubsub = self._cluster.pubsub()

    async def close(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()

    def _opened(self) -> ClusterPubSub:
        if self._pubsub is None:
            raise RedisConnectionError("redis pub/sub is not connected")
        return self._pubsub

    async def subscribe(self, *channels: str) -> None:
        pubsub = self._opened()
        await pubsub.ssubscribe(*channels)
        # redis-py would reconnect and subscribe again by itself, hiding a
        # shard that restarted (and may have lost data) in between; the
        # listener must see the loss, to hold calls (``LossRecovery._gate``)
        # and check (``LossRecovery._recover``).
        for shard in pubsub.node_pubsub_mapping.values():
            if shard.connection is not None:
                shard.connection.retry = Retry(NoBackoff(), 0)

    async def unsubscribe(self, *channels: str) -> None:
        await self._opened().sunsubscribe(*channels)

    async def read(self) -> list[list[Any]]:
        """The next message or confirmation, as ``[kind, channel, data]``."""
        pubsub = self._opened()
        while True:
            # One connection per shard, read in turn: a short wait on each
            # keeps the others' messages prompt.
            message = await pubsub.get_sharded_message(timeout=_SHARD_POLL_SECONDS)
            if message is not None:
                return [[message["type"], message["channel"], message["data"]]]
            if asyncio.get_running_loop().time() >= self._next_look:
                await self._look_at_primaries()

    async def _look_at_primaries(self) -> None:
        """Raise a lost connection if the primaries holding slots are no longer those it connected to.

        A primary added and given slots nobody here listens on would
        otherwise go unwatched (no control channel on it, its run id never
        checked); one removed gives up its control channel's slot, which the
        listener notices by itself. One ``CLUSTER SLOTS``, to any node.
        """
        async with asyncio.timeout(COMMAND_SECONDS):
            slots: dict[Any, dict[str, Any]] = await self._cluster.execute_command("CLUSTER SLOTS")
        self._next_look = asyncio.get_running_loop().time() + _PRIMARIES_SECONDS
        primaries = {get_node_name(*held["primary"]) for held in slots.values()}
        if primaries != self._primaries:
            raise RedisConnectionError("redis cluster's primaries changed")
