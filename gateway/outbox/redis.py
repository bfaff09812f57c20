"""The job store shared by every instance: Redis.

Every key of the outbox carries one hash tag, ``{<prefix>:outbox}``, so on
a Redis Cluster they all live in one slot and each Lua script below stays
a single atomic step. Every key a script touches is one of its KEYS, as
Redis Cluster requires (a key not declared is not checked while its slot
migrates, and a proxy that routes scripts by their keys does not know of
it): taking and waking first read which jobs qualify, then a script checks
each still does as it acts on it.

- ``…:due``: a sorted set of waiting and running jobs by due time (a
  running job's due time is the end of its lease);
- ``…:created``: the same jobs by creation time (depth and oldest age);
- ``…:job:<key>``: a hash per job (kind, payload, attempts, reason, token);
- ``…:dead``: a sorted set of buried jobs by when (their hashes are kept);
- ``…:done:<key>``: set for a while after a job succeeded, so the same
  key enqueued again makes no second job.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from redis.exceptions import RedisClusterException, RedisError

from gateway.outbox.jobs import Job, decode_payload, encode_payload
from gateway.outbox.store import DeadLetter, Stats, StoreUnavailable
from gateway.redisconn import RedisClient, close, connect

# KEYS: job, due, created, done, dead. ARGV: key, kind, payload, created_at, due_at.
_PUT = """
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[4]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'kind', ARGV[2], 'payload', ARGV[3], 'created_at', ARGV[4],
  'attempts', 0, 'reason', '', 'token', '')
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
return 1
"""

# KEYS: due, job. ARGV: key, now, lease end, token. The job taken, as
# {due_at, kind, payload, created_at, attempts, reason}, or nil when it is no
# longer due (another worker took it since it was read).
_TAKE = """
local at = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not at or tonumber(at) > tonumber(ARGV[2]) then return false end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('HSET', KEYS[2], 'token', ARGV[4])
local f = redis.call('HMGET', KEYS[2], 'kind', 'payload', 'created_at', 'attempts', 'reason')
return {ARGV[3], f[1], f[2], f[3], f[4], f[5]}
"""
# How many due jobs one read offers the take script; the first still due is taken.
_TAKE_CANDIDATES = 8

# KEYS: job, due. ARGV: key, token, lease end.
_RENEW = """
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[2] then return 0 end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1
"""

# KEYS: job, due, created, done. ARGV: key, token, seconds to remember it done.
_COMPLETE = """
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('SET', KEYS[4], '1', 'EX', ARGV[3])
return 1
"""

# KEYS: job, due. ARGV: key, token, due_at, reason.
_RESCHEDULE = """
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[2] then return 0 end
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'reason', ARGV[4], 'token', '')
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1
"""

# KEYS: job, due, created, dead. ARGV: key, token, reason, now.
_BURY = """
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[2] then return 0 end
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'reason', ARGV[3], 'token', '', 'buried_at', ARGV[4])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[1])
return 1
"""


# KEYS: due, then a job's key for each job named in ARGV. ARGV: now, the
# number of reasons, the reasons, the jobs. A job still waiting (due later,
# no worker's token) for one of the reasons is made due now; jobs held by a
# worker keep their lease.
_WAKE = """
local reasons = {}
local n = tonumber(ARGV[2])
for i = 3, 2 + n do reasons[ARGV[i]] = true end
local woken = 0
for i = 2, #KEYS do
  local key = ARGV[1 + n + i]
  local at = redis.call('ZSCORE', KEYS[1], key)
  if at and tonumber(at) > tonumber(ARGV[1]) then
    local f = redis.call('HMGET', KEYS[i], 'reason', 'token')
    if (f[2] == '' or f[2] == false) and f[1] and reasons[f[1]] then
      redis.call('ZADD', KEYS[1], ARGV[1], key)
      woken = woken + 1
    end
  end
end
return woken
"""
# Jobs per wake script: a bounded step, however many jobs wait.
_WAKE_BATCH = 256


class RedisStore:
    def __init__(self, url: str, prefix: str = "gw", done_seconds: float = 7 * 86400) -> None:
        self._tag = f"{{{prefix}:outbox}}"
        self._done_seconds = max(1, int(done_seconds))
        self._redis: RedisClient = connect(url, socket_timeout=5)
        self._put = self._redis.register_script(_PUT)
        self._take = self._redis.register_script(_TAKE)
        self._renew = self._redis.register_script(_RENEW)
        self._complete = self._redis.register_script(_COMPLETE)
        self._reschedule = self._redis.register_script(_RESCHEDULE)
        self._bury = self._redis.register_script(_BURY)
        self._wake = self._redis.register_script(_WAKE)

    # -- keys ----------------------------------------------------------------
    def _job(self, key: str) -> str:
        return f"{self._tag}:job:{key}"

    @property
    def _due(self) -> str:
        return f"{self._tag}:due"

    @property
    def _created(self) -> str:
        return f"{self._tag}:created"

    @property
    def _dead(self) -> str:
        return f"{self._tag}:dead"

    def _done(self, key: str) -> str:
        return f"{self._tag}:done:{key}"

    async def _call(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        return await self._read(script(keys=keys, args=args))

    async def _read(self, answer: Awaitable[Any]) -> Any:
        try:
            return await answer
        except (RedisError, RedisClusterException, OSError) as exc:
            raise StoreUnavailable(f"outbox in Redis: {exc}") from exc

    # -- the store -------------------------------------------------------------
    async def put(self, job: Job) -> bool:
        keys = [self._job(job.key), self._due, self._created, self._done(job.key), self._dead]
        args = [job.key, job.kind, encode_payload(job.payload), repr(job.created_at), repr(job.due_at)]
        return bool(await self._call(self._put, keys, args))

    async def take(self, now: float, lease_seconds: float, token: str) -> Job | None:
        lease_end = repr(now + lease_seconds)
        while True:
            due: list[Any] = await self._read(
                self._redis.zrangebyscore(self._due, "-inf", repr(now), start=0, num=_TAKE_CANDIDATES)
            )
            if not due:
                return None
            for key in map(str, due):
                keys = [self._due, self._job(key)]
                found = await self._call(self._take, keys, [key, repr(now), lease_end, token])
                if found:
                    due_at, kind, payload, created_at, attempts, reason = found
                    return Job(
                        key,
                        str(kind),
                        decode_payload(str(payload)),
                        float(created_at),
                        float(due_at),
                        int(attempts),
                        str(reason or ""),
                        token,
                    )
            # Every one was taken by another worker meanwhile: read again.

    async def renew(self, job: Job, lease_end: float) -> bool:
        keys = [self._job(job.key), self._due]
        return bool(await self._call(self._renew, keys, [job.key, job.token, repr(lease_end)]))

    async def complete(self, job: Job, now: float) -> bool:
        keys = [self._job(job.key), self._due, self._created, self._done(job.key)]
        return bool(await self._call(self._complete, keys, [job.key, job.token, self._done_seconds]))

    async def reschedule(self, job: Job, due_at: float, reason: str) -> bool:
        keys = [self._job(job.key), self._due]
        return bool(await self._call(self._reschedule, keys, [job.key, job.token, repr(due_at), reason]))

    async def bury(self, job: Job, reason: str, now: float) -> bool:
        keys = [self._job(job.key), self._due, self._created, self._dead]
        return bool(await self._call(self._bury, keys, [job.key, job.token, reason, repr(now)]))

    async def wake(self, reasons: tuple[str, ...], now: float) -> int:
        if not reasons:
            return 0
        waiting: list[Any] = await self._read(self._redis.zrangebyscore(self._due, f"({now!r}", "+inf"))
        woken = 0
        for start in range(0, len(waiting), _WAKE_BATCH):
            batch = [str(key) for key in waiting[start : start + _WAKE_BATCH]]
            keys = [self._due, *map(self._job, batch)]
            args = [repr(now), len(reasons), *reasons, *batch]
            woken += int(await self._call(self._wake, keys, args))
        return woken

    async def stats(self) -> Stats:
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zcard(self._created)
                pipe.zrange(self._created, 0, 0, withscores=True)
                pipe.zcard(self._dead)
                depth, oldest, dead = await pipe.execute()
        except (RedisError, RedisClusterException, OSError) as exc:
            raise StoreUnavailable(f"outbox in Redis: {exc}") from exc
        return Stats(int(depth), float(oldest[0][1]) if oldest else None, int(dead))

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        try:
            buried: list[Any] = await self._redis.zrange(self._dead, 0, limit - 1, withscores=True)
            out = []
            for key, at in buried:
                fields = await self._redis.hgetall(self._job(str(key)))
                out.append(
                    DeadLetter(
                        str(key),
                        str(fields.get("kind", "")),
                        decode_payload(str(fields.get("payload", "{}"))),
                        str(fields.get("reason", "")),
                        int(fields.get("attempts", 0)),
                        float(at),
                    )
                )
        except (RedisError, RedisClusterException, OSError) as exc:
            raise StoreUnavailable(f"outbox in Redis: {exc}") from exc
        return out

    async def close(self) -> None:
        await close(self._redis)
