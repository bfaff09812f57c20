"""Failed logins counted in Redis, so every instance applies one allowance.

The rule is ``gateway.auth.throttle``'s; here it is kept in sorted sets (one
member per try, scored by Redis's clock, so instances with drifting clocks
share one window). A login's keys share a cluster slot, and an address's:
each script touches one slot. Logins and addresses appear in key names
only hashed.

This module holds the scripts and the rule's order; the Redis broker runs
them (``Run``), under its deadline, and owns the connection.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.auth.throttle import LoginLimits, LoginThrottle, key_of

# (script, keys, args) -> the script's reply
Run = Callable[[str, list[str], list[Any]], Awaitable[Any]]

# Shared by both scripts: drop what left the window, then the ms until the
# try that blocks leaves it (0: fewer than the limit in the window).
_WAIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function wait(key, limit, window)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) >= limit then
    local blocking = redis.call('ZRANGE', key, -limit, -limit, 'WITHSCORES')
    return tonumber(blocking[2]) + window - now
  end
  return 0
end
"""

# KEYS: the login's failures from this address, the login's failures, the
# login's own addresses. ARGV: address key, per-pair limit, per-login limit,
# window ms, this try's member, how long an address stays the login's own
# (ms). 0 once counted, else the ms to wait.
ADMIT_LOGIN = (
    _WAIT
    + """
local window = tonumber(ARGV[4])
local w = wait(KEYS[1], tonumber(ARGV[2]), window)
local login_wait = wait(KEYS[2], tonumber(ARGV[3]), window)
local own = redis.call('ZSCORE', KEYS[3], ARGV[1])
if not (own and tonumber(own) > now - tonumber(ARGV[6])) then
  w = math.max(w, login_wait)
end
if w > 0 then return w end
for i = 1, 2 do
  redis.call('ZADD', KEYS[i], now, ARGV[5])
  redis.call('PEXPIRE', KEYS[i], window)
end
return 0
"""
)

# KEYS: the address's failures. ARGV: limit, window ms, this try's member.
ADMIT_ADDRESS = (
    _WAIT
    + """
local window = tonumber(ARGV[2])
local w = wait(KEYS[1], tonumber(ARGV[1]), window)
if w > 0 then return w end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return 0
"""
)

# KEYS: as ADMIT_LOGIN's. ARGV: this try's member ("" = the newest),
# address key, how long an address stays the login's own (ms). Takes back a
# try's counts on the login's side; with an address key, the try was right:
# the pair starts over and the address is the login's own (at most 100).
TAKE_BACK_LOGIN = """
if ARGV[1] == '' then
  redis.call('ZPOPMAX', KEYS[2])
else
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
end
if ARGV[2] ~= '' then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('DEL', KEYS[1])
  redis.call('ZADD', KEYS[3], now, ARGV[2])
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[3]))
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -101)
  redis.call('PEXPIRE', KEYS[3], ARGV[3])
end
return 0
"""

# KEYS: the address's failures. ARGV: a try's member ("" = the newest).
TAKE_BACK_ADDRESS = """
if ARGV[1] == '' then redis.call('ZPOPMAX', KEYS[1]) else redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0
"""


class SharedLoginThrottle(LoginThrottle):
    def __init__(self, prefix: str, run: Run, limits: LoginLimits | None = None) -> None:
        super().__init__(limits or LoginLimits())
        self._prefix = prefix
        self._run = run

    def _login_keys(self, login: str, address: str) -> list[str]:
        # The braces are the cluster hash tag: one slot per login.
        base = f"{self._prefix}:{{login:{key_of(login)}}}"
        return [f"{base}:failed-from:{key_of(address)}", f"{base}:failed", f"{base}:own"]

    def _address_key(self, address: str) -> str:
        return f"{self._prefix}:{{address:{key_of(address)}}}:failed"

    async def admit(self, login: str, address: str) -> float:
        limits = self.limits
        window_ms = max(1, int(limits.window_seconds * 1000))
        own_ms = max(1, int(limits.own_days * 86_400_000))
        member = secrets.token_hex(8)
        login_keys = self._login_keys(login, address)
        where = key_of(address)
        wait = await self._run(
            ADMIT_LOGIN,
            login_keys,
            [where, limits.per_pair, limits.per_login, window_ms, member, own_ms],
        )
        if int(wait) > 0:
            return int(wait) / 1000
        address_key = self._address_key(address)
        wait = await self._run(ADMIT_ADDRESS, [address_key], [limits.per_address, window_ms, member])
        if int(wait) > 0:
            # Refused for the address: the login's side counts nothing either.
            await self._run(TAKE_BACK_LOGIN, login_keys, [member, "", own_ms])
            return int(wait) / 1000
        return 0.0

    async def succeeded(self, login: str, address: str) -> None:
        own_ms = max(1, int(self.limits.own_days * 86_400_000))
        await self._run(TAKE_BACK_LOGIN, self._login_keys(login, address), ["", key_of(address), own_ms])
        await self._run(TAKE_BACK_ADDRESS, [self._address_key(address)], [""])
