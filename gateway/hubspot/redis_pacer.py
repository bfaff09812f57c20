"""HubSpot's per-portal windows kept in Redis, so that instances and workers share them.

HubSpot counts a portal's requests per app, whichever process sends them:
with windows per process, N of them could send N times the limit and earn
the 429s the pacer exists to avoid. One script checks and takes a slot in
both windows of a portal atomically, on Redis's clock (the processes'
clocks need not agree); the waiting stays in the process, as with ``Pacer``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets

from redis.exceptions import RedisError

from gateway.hubspot.ratelimit import GENERAL, MAX_WAIT_SECONDS, SEARCH, Busy
from gateway.redisconn import RedisClient, close, connect

log = logging.getLogger("gateway.hubspot")

# KEYS: general window, search window, held-until (one hash tag: one slot).
# ARGV: general limit, general ms, search limit (0: not a search), search ms,
# member, take (1: take the slot when it fits; 0: only tell the wait).
# Returns the milliseconds to wait; 0 when the slot was free.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local held = tonumber(redis.call('GET', KEYS[3]) or '0')
if held > now then return held - now end
local function wait(key, limit, ms)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - ms)
  if redis.call('ZCARD', key) < limit then return 0 end
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + ms - now)
end
local general_ms = tonumber(ARGV[2])
local search_limit = tonumber(ARGV[3])
local search_ms = tonumber(ARGV[4])
local due = wait(KEYS[1], tonumber(ARGV[1]), general_ms)
if search_limit > 0 then due = math.max(due, wait(KEYS[2], search_limit, search_ms)) end
if due > 0 or ARGV[6] == '0' then return due end
redis.call('ZADD', KEYS[1], now, ARGV[5])
redis.call('PEXPIRE', KEYS[1], general_ms)
if search_limit > 0 then
  redis.call('ZADD', KEYS[2], now, ARGV[5])
  redis.call('PEXPIRE', KEYS[2], search_ms)
end
return 0
"""

# KEYS: held-until. ARGV: milliseconds from now. Only ever moves it later.
_HOLD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local held_until = now + tonumber(ARGV[1])
if held_until > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], held_until, 'PX', tonumber(ARGV[1]))
end
return 0
"""


class RedisPacer:
    def __init__(
        self,
        url: str,
        prefix: str,
        general: tuple[int, float] = GENERAL,
        search: tuple[int, float] = SEARCH,
    ) -> None:
        self._redis: RedisClient = connect(url, socket_timeout=5)
        self._prefix = prefix
        self._general = (general[0], round(general[1] * 1000))
        self._search = (search[0], round(search[1] * 1000))
        self._take = self._redis.register_script(_TAKE)
        self._hold = self._redis.register_script(_HOLD)
        # Unique members of the windows' sorted sets: two requests in one
        # millisecond are two requests.
        self._me = secrets.token_hex(6)
        self._count = itertools.count()

    def _keys(self, portal: int) -> list[str]:
        tag = f"{{{self._prefix}:hubspot:pace:{portal}}}"
        return [f"{tag}:general", f"{tag}:search", f"{tag}:held"]

    async def _wait_ms(self, portal: int, search: bool, take: bool) -> int:
        search_limit, search_ms = self._search if search else (0, 0)
        member = f"{self._me}:{next(self._count)}"
        args = [*self._general, search_limit, search_ms, member, 1 if take else 0]
        try:
            return int(await self._take(keys=self._keys(portal), args=args))
        except (RedisError, OSError) as error:
            # Unpaced rather than stopped: HubSpot's 429s are still read and
            # retried, and its requests are what logs the calls.
            log.warning("HubSpot pacing: Redis unavailable, request not paced: %s", error)
            return 0

    async def delay(self, portal: int, search: bool) -> float:
        return await self._wait_ms(portal, search, take=False) / 1000

    async def acquire(self, portal: int, search: bool = False, max_wait: float = MAX_WAIT_SECONDS) -> None:
        # Pacing is waiting for time itself to pass: there is no event to await.
        while (wait := await self._wait_ms(portal, search, take=True) / 1000) > 0:
            if wait > max_wait:
                raise Busy(wait)
            await asyncio.sleep(wait)

    async def hold(self, portal: int, seconds: float) -> None:
        try:
            await self._hold(keys=self._keys(portal)[2:], args=[max(1, round(seconds * 1000))])
        except (RedisError, OSError) as error:
            log.warning(
                "HubSpot pacing: Redis unavailable, 429 hold of portal %s not shared: %s", portal, error
            )

    async def close(self) -> None:
        await close(self._redis)
