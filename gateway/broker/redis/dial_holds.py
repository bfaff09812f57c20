"""Click-to-dial's held ends on Redis (the rule: ``gateway.broker.dial_holds``).

Keys (``Keys.dial_mark`` / ``Keys.dial_held``): the mark is a string, the
referrer's token with a TTL; the held ends a list beside it. Both carry the
user's hash tag, so each script touches one cluster slot.
"""

from __future__ import annotations

from gateway.broker.dial_holds import HELD_GRACE_SECONDS, MAX_HELD, DialHolds
from gateway.broker.redis.keys import Keys
from gateway.broker.shared_logins import Run

# KEYS: mark. ARGV: token, ttl ms. A script like the others, so that the
# broker's one runner (deadline, script cache) carries all three.
MARK = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# KEYS: mark, held. ARGV: item, most held, grace ms. 1 once held under a
# live mark (the list lives as long as the mark, and a grace), else 0.
HOLD = """
local left = redis.call('PTTL', KEYS[1])
if left == -2 then return 0 end
if left < 0 then left = 0 end
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
redis.call('PEXPIRE', KEYS[2], left + tonumber(ARGV[3]))
return 1
"""

# KEYS: mark, held. ARGV: token. Unless another dial's mark is there: the
# mark removed and the held ends taken (in the order they came).
RELEASE = """
local mark = redis.call('GET', KEYS[1])
if mark and mark ~= ARGV[1] then return {} end
local items = redis.call('LRANGE', KEYS[2], 0, -1)
redis.call('DEL', KEYS[1], KEYS[2])
return items
"""


class SharedDialHolds(DialHolds):
    def __init__(self, keys: Keys, run: Run) -> None:
        self._keys = keys
        self._run = run

    async def mark(self, user_id: str, number: str, token: str, seconds: float) -> None:
        await self._run(MARK, [self._keys.dial_mark(user_id, number)], [token, max(1, int(seconds * 1000))])

    async def hold(self, user_id: str, number: str, item: str) -> bool:
        keys = [self._keys.dial_mark(user_id, number), self._keys.dial_held(user_id, number)]
        held = await self._run(HOLD, keys, [item, MAX_HELD, int(HELD_GRACE_SECONDS * 1000)])
        return bool(held)

    async def release(self, user_id: str, number: str, token: str) -> list[str]:
        keys = [self._keys.dial_mark(user_id, number), self._keys.dial_held(user_id, number)]
        items = await self._run(RELEASE, keys, [token])
        return [str(item) for item in items or []]
