"""Live fan-out: ONE pub/sub connection per process, on the channel of each user with a stream here.

A connection per stream would exhaust Redis and the process at a few
thousand streams. The listener is also what notices a lost or restarted
Redis: on (re)connecting it runs the loss check before calls may advance.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError

from gateway.broker.base import BrokerUnavailable, Conflict
from gateway.broker.redis.commands import REDIS_TROUBLE, command, raised_in_redis_py
from gateway.broker.redis.direct import Subscriber
from gateway.broker.redis.recovery import LossRecovery
from gateway.broker.redis.topology import ShardedSubscriber
from gateway.config import Settings
from gateway.tasks import cancel_and_wait
from gateway.wire import Envelope

log = logging.getLogger("gateway.broker.redis")


class Fanout(LossRecovery):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._subscriber: Subscriber | ShardedSubscriber | None = None
        self._listener: asyncio.Task[None] | None = None
        self._confirmed: dict[str, asyncio.Future[None]] = {}
        self._sub_lock = asyncio.Lock()
        self._healthy = False
        self._stopping = False

    # -- lifecycle ---------------------------------------------------------
    async def start(self) -> None:
        self._stopping = False
        self._connecting = True
        self._listener = asyncio.create_task(self._listen_forever(), name="redis-pubsub")

    async def close(self) -> None:
        self._stopping = True
        await super().close()
        if self._listener is not None:
            await cancel_and_wait(self._listener)
        if self._subscriber is not None:
            await self._subscriber.close()
        await self._close_client()

    async def ping(self) -> bool:
        try:
            async with command():
                return bool(await self._redis.ping()) and self._healthy
        except BrokerUnavailable:
            return False

    # -- live fan-out --------------------------------------------------------
    async def _listen(self, user_id: str, first: bool) -> None:
        channel = self._keys.channel(user_id)
        # SUBSCRIBE and UNSUBSCRIBE go out one at a time, in the order they
        # are decided, so Redis never ends up unsubscribed from a channel a
        # stream here still needs.
        async with self._sub_lock:
            pending = self._confirmed.get(channel)
            if pending is None:
                if self._subscriber is None or not self._healthy:
                    raise BrokerUnavailable("redis pub/sub is not connected")
                pending = asyncio.get_running_loop().create_future()
                self._confirmed[channel] = pending
                try:
                    async with command():
                        await self._subscriber.subscribe(channel)
                except BrokerUnavailable:
                    self._confirmed.pop(channel, None)
                    raise
        # Replay must not start before live delivery is on, or events
        # published in between would be in neither.
        try:
            await asyncio.wait_for(asyncio.shield(pending), 5)
        except TimeoutError as exc:
            raise BrokerUnavailable("redis did not confirm the subscription") from exc

    def _unlisten(self, user_id: str) -> None:
        task = asyncio.get_running_loop().create_task(self._drop_channel(user_id))
        task.add_done_callback(_ignore_result)

    async def _drop_channel(self, user_id: str) -> None:
        async with self._sub_lock:
            if user_id in self._local:
                return
            channel = self._keys.channel(user_id)
            self._confirmed.pop(channel, None)
            if self._subscriber is not None and self._healthy:
                async with command():
                    await self._subscriber.unsubscribe(channel)

    async def _listen_forever(self) -> None:
        delay = 0.1
        while not self._stopping:
            # One server or a Sentinel set-up's primary: a connection of its
            # own, read directly; a cluster: redis-py's sharded pub/sub.
            subscriber = (
                ShardedSubscriber(self._redis)
                if isinstance(self._redis, RedisCluster)
                else Subscriber(self._redis.connection_pool)
            )
            self._connecting = True
            try:
                await subscriber.open()
                # A control channel opens the connection before any stream
                # needs it. On a cluster, one per primary: a connection to
                # every shard, so that a shard that restarts (and may have
                # lost data) is noticed at once, as a single Redis is.
                await subscriber.subscribe(*self._control_channels())
                control = self._keys.control()
                control_confirmed: set[str] = set()
                self._subscriber = subscriber
                await self._recover()
                self._healthy = True
                self._ready.set()
                delay = 0.1
                log.info("redis pub/sub connected")
                user_of, deliver = self._keys.user_of, self._deliver
                while True:
                    for kind, channel, data in await subscriber.read():
                        if kind == "message" or kind == "smessage":
                            user_id = user_of(channel)
                            if user_id is not None:
                                event_id, _, text = data.partition(" ")
                                deliver(user_id, Envelope(event_id, text))
                            elif channel.startswith(control):
                                self._on_control(data)
                        elif kind == "subscribe" or kind == "ssubscribe":
                            if channel.startswith(control):
                                if channel in control_confirmed:
                                    # Confirmed again: the client reconnected by
                                    # itself, and Redis may have restarted in between.
                                    raise RedisConnectionError("redis pub/sub reconnected by itself")
                                control_confirmed.add(channel)
                                continue
                            future = self._confirmed.get(channel)
                            if future is not None and not future.done():
                                future.set_result(None)
                        elif kind == "sunsubscribe" and (
                            channel in control_confirmed
                            or ((future := self._confirmed.get(channel)) is not None and future.done())
                        ):
                            # Not asked for (a channel is dropped from
                            # ``_confirmed`` first, and a control channel
                            # never): Redis moved the channel's slot to
                            # another node and dropped its subscribers. The
                            # events published there since are in history.
                            raise RedisConnectionError("redis moved a slot listened to")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._stopping:
                    return
                ours = isinstance(exc, AttributeError) and not raised_in_redis_py(exc)
                if isinstance(exc, (*REDIS_TROUBLE, BrokerUnavailable, Conflict)) and not ours:
                    log.warning("redis pub/sub lost (%s); streams here will resume from history", exc)
                else:
                    # A bug, not Redis trouble: logged as one, and the listener
                    # starts over (ended here, its task would leave the gateway
                    # reporting ready and delivering nothing).
                    log.exception("redis pub/sub listener failed; streams here will resume from history")
            self._healthy = False
            self._ready.clear()
            self._connecting = False
            self._subscriber = None
            await subscriber.close()
            # Live events sent while the connection was down are lost to
            # this process; its streams are closed so that their clients
            # reconnect and replay them from history.
            for future in self._confirmed.values():
                if not future.done():
                    future.set_exception(BrokerUnavailable("redis pub/sub lost"))
                    future.exception()
            self._confirmed.clear()
            self.close_streams("broker-reconnect")
            await asyncio.sleep(delay)
            # At most a second: calls wait for this connection (``LossRecovery._gate``).
            delay = min(delay * 2, 1.0)


def _ignore_result(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.debug("unsubscribe failed: %s", task.exception())
