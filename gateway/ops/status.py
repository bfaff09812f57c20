"""Each instance's status record, for the operator page (``/admin``) of any instance.

Every ``interval`` seconds an instance writes what only it knows (its open
streams per user, its SIP subscriptions, its event and refusal rates) as a
small JSON record. With Redis the record goes to
``<prefix>:{admin}:status:<instance>`` with a TTL of a few intervals, and the
instance's id into the set ``<prefix>:{admin}:status`` (one hash tag: one
slot on a cluster), so any instance serving ``/admin`` reads every live
instance's record and a dead one's disappears by itself. Without Redis
there is one instance and its record stays in the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

from gateway.redisconn import RedisClient, close, connect
from gateway.tasks import cancel_and_wait

log = logging.getLogger("gateway.ops")

Record = dict[str, Any]


class Rates:
    """Per-minute rates of growing totals, between two readings."""

    def __init__(self) -> None:
        self._last: tuple[float, dict[str, float]] | None = None

    def update(self, totals: dict[str, float], now: float) -> dict[str, float]:
        last, self._last = self._last, (now, dict(totals))
        if last is None or now <= last[0]:
            return {name: 0.0 for name in totals}
        minutes = (now - last[0]) / 60
        return {name: max(0.0, value - last[1].get(name, 0.0)) / minutes for name, value in totals.items()}


class StatusBoard:
    def __init__(
        self,
        collect: Callable[[], Record],
        totals: Callable[[], dict[str, float]],
        redis_url: str | None = None,
        prefix: str = "gw",
        interval: float = 2.0,
    ) -> None:
        self.instance_id = secrets.token_hex(6)
        self.started_at = time.time()
        self._collect = collect
        self._totals = totals
        self._rates = Rates()
        self._interval = interval
        self._ttl_ms = max(1000, int(interval * 5 * 1000))
        self._prefix = prefix
        self._redis: RedisClient | None = connect(redis_url, socket_timeout=3) if redis_url else None
        self._own: Record = {}
        self._task: asyncio.Task[None] | None = None

    def _set_key(self) -> str:
        return f"{self._prefix}:{{admin}}:status"

    def _key(self, instance: str) -> str:
        return f"{self._prefix}:{{admin}}:status:{instance}"

    def snapshot(self) -> Record:
        """This instance's record as of now."""
        now = time.time()
        totals = self._totals()
        return {
            **self._collect(),
            "id": self.instance_id,
            "startedAt": self.started_at,
            "seenAt": now,
            "totals": totals,
            "perMinute": self._rates.update(totals, time.monotonic()),
        }

    async def publish(self) -> None:
        self._own = self.snapshot()
        if self._redis is None:
            return
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._key(self.instance_id), json.dumps(self._own), px=self._ttl_ms)
            pipe.sadd(self._set_key(), self.instance_id)
            await pipe.execute()

    async def records(self) -> list[Record]:
        """Every live instance's latest record, this one's first and as of now."""
        own = {**self.snapshot(), "perMinute": self._own.get("perMinute", {})}
        if self._redis is None:
            return [own]
        ids = sorted(str(i) for i in await self._redis.smembers(self._set_key()))
        found = await self._redis.mget([self._key(i) for i in ids]) if ids else []
        others: list[Record] = []
        for instance, text in zip(ids, found, strict=True):
            if text is None:  # its TTL ran out: the instance is gone
                await self._redis.srem(self._set_key(), instance)
            elif instance != self.instance_id:
                others.append(json.loads(text))
        return [own, *others]

    async def _run(self) -> None:
        while True:
            try:
                await self.publish()
            except Exception as exc:  # Redis down: the page says so when it reads
                log.warning("status record not written: %s", exc)
            await asyncio.sleep(self._interval)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="status-board")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
        if self._redis is not None:
            with contextlib.suppress(Exception):
                await self._redis.delete(self._key(self.instance_id))
                await self._redis.srem(self._set_key(), self.instance_id)
            await close(self._redis)
