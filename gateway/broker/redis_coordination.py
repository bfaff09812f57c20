"""What SIP instances share, on Redis: live instances, leases, call identities, publications.

Keys (``gw`` is ``GATEWAY_KEY_PREFIX``; the braces are Redis Cluster hash
tags, so every key of one AOR lands in one slot and each script touches
one slot). A PBX connection's lease and legs (its name ``pbx:<kind>:<tenant>``,
``gateway.sources.pbxlink``) have the same keys under ``gw:{pbx:<kind>:<tenant>}``
instead of ``gw:{aor:<aor>}``:

- ``gw:{sip}:instances``: sorted set, instance id -> when its heartbeat
  runs out (ms, Redis's clock). Dead entries are dropped by the next
  heartbeat of anyone.
- ``gw:{aor:<aor>}:lease``: ``<instance>:<token>``, with a TTL; set with NX,
  renewed and released by a script that compares the whole value.
- ``gw:{aor:<aor>}:fence``: the counter the fencing tokens come from.
- ``gw:{aor:<aor>}:calls``: hash, key of a PBX call that names no call-id
  -> its call id (set by its first observer, the field deleted when the
  call ends; the hash expires after the call TTL without a new claim).
- ``gw:{aor:<aor>}:pub:<publication>``: a PUBLISH record (JSON: current
  entity tag, user, expiry, dialogs); ``gw:{sip}:publications`` indexes
  them by expiry (a hint for the sweeper; the record's own expiry decides).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import AsyncIterator, Mapping

from redis.asyncio.cluster import ClusterPipeline
from redis.exceptions import RedisClusterException, RedisError

from gateway.broker.base import BrokerUnavailable
from gateway.redisconn import RedisClient, close, connect

_COMMAND_SECONDS = 5.0
# How a PBX connection's name begins (an AOR is a sip:/sips: URI).
_PBX = "pbx:"

# KEYS: instances. ARGV: id, ttl ms. Live ids (this one included).
_HEARTBEAT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""

# KEYS: lease, fence. ARGV: instance id, ttl ms. The token held, or false.
_ACQUIRE = """
local held = redis.call('GET', KEYS[1])
if held then
  local who, token = string.match(held, '^(.*):(%d+)$')
  if who == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return tonumber(token)
  end
  return false
end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. token, 'PX', ARGV[2])
return token
"""

# KEYS: lease. ARGV: value, ttl ms. 1 if still held and extended.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

# KEYS: a key. ARGV: a value. Deleted only while it holds that value.
_DELETE_IF = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: the calls hash. ARGV: key, call id, ttl s. The id held, else ARGV[2] once set.
_CLAIM = """
local held = redis.call('HGET', KEYS[1], ARGV[1])
if held then return held end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return ARGV[2]
"""

# KEYS: the calls hash. ARGV: key, call id. The field deleted only while it names that call.
_END_CALL = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
"""

# KEYS: record. ARGV: expected etag ('' = create), record JSON, ttl ms.
# A refresh keeps the dialogs already recorded beside the new ones.
_SAVE_PUBLICATION = """
local held = redis.call('GET', KEYS[1])
local new = cjson.decode(ARGV[2])
if ARGV[1] ~= '' then
  if not held then return 0 end
  local old = cjson.decode(held)
  if old['etag'] ~= ARGV[1] then return 0 end
  if type(old['dialogs']) == 'table' then
    if type(new['dialogs']) ~= 'table' then new['dialogs'] = {} end
    for k, v in pairs(old['dialogs']) do
      if new['dialogs'][k] == nil then new['dialogs'][k] = v end
    end
  end
end
redis.call('SET', KEYS[1], cjson.encode(new), 'PX', ARGV[3])
return 1
"""

# KEYS: record. ARGV: etag. The record, removed, if that tag is current.
_REMOVE_PUBLICATION = """
local held = redis.call('GET', KEYS[1])
if not held or cjson.decode(held)['etag'] ~= ARGV[1] then return false end
redis.call('DEL', KEYS[1])
return held
"""

# KEYS: record. ARGV: now ms. The record, removed, if it expired by then.
_TAKE_EXPIRED = """
local held = redis.call('GET', KEYS[1])
if not held then return false end
local expires = tonumber(cjson.decode(held)['expires_ms'])
if expires == nil or expires > tonumber(ARGV[1]) then return false end
redis.call('DEL', KEYS[1])
return held
"""

# Kept this long after its expiry, for the sweeper of some instance to end its calls.
_RECORD_GRACE_MS = 300_000


class RedisCoordination:
    shared = True

    def __init__(self, url: str, prefix: str) -> None:
        self.instance_id = secrets.token_hex(6)
        self._prefix = prefix
        self._redis: RedisClient = connect(url, max_connections=20)
        self._heartbeat = self._redis.register_script(_HEARTBEAT)
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._renew = self._redis.register_script(_RENEW)
        self._delete_if = self._redis.register_script(_DELETE_IF)
        self._claim = self._redis.register_script(_CLAIM)
        self._end_call = self._redis.register_script(_END_CALL)
        self._save = self._redis.register_script(_SAVE_PUBLICATION)
        self._remove = self._redis.register_script(_REMOVE_PUBLICATION)
        self._take = self._redis.register_script(_TAKE_EXPIRED)

    # -- keys ----------------------------------------------------------------
    def _instances_key(self) -> str:
        return f"{self._prefix}:{{sip}}:instances"

    def _key(self, name: str, rest: str) -> str:
        """A key of an AOR, or of a PBX connection (named ``pbx:…``, its own hash tag)."""
        tag = name if name.startswith(_PBX) else f"aor:{name}"
        return f"{self._prefix}:{{{tag}}}:{rest}"

    def _index_key(self) -> str:
        return f"{self._prefix}:{{sip}}:publications"

    async def close(self) -> None:
        await close(self._redis)

    # -- membership and leases ----------------------------------------------------
    async def heartbeat(self, ttl_seconds: float) -> list[str]:
        async with _command():
            live = await self._heartbeat(
                keys=[self._instances_key()], args=[self.instance_id, _ms(ttl_seconds)]
            )
        return [str(i) for i in live]

    async def leave(self) -> None:
        async with _command():
            await self._redis.zrem(self._instances_key(), self.instance_id)

    async def acquire(self, name: str, ttl_seconds: float) -> int | None:
        async with _command():
            if name.startswith(_PBX) and await self._redis.exists(f"{self._prefix}:{{aor:{name}}}:lease"):
                # A rolling upgrade: an instance from before the {pbx:…} keys holds the
                # connection under its old key, and is connected until it lets go.
                return None
            token = await self._acquire(
                keys=[self._key(name, "lease"), self._key(name, "fence")],
                args=[self.instance_id, _ms(ttl_seconds)],
            )
        return None if token is None else int(token)

    async def renew(self, leases: Mapping[str, int], ttl_seconds: float) -> list[str]:
        if not leases:
            return []
        names = list(leases)
        # One round trip for all of them; each script touches one AOR's slot.
        async with _command(), self._redis.pipeline(transaction=False) as pipe:
            for name in names:
                keys = [self._key(name, "lease")]
                args: list[str | int] = [f"{self.instance_id}:{leases[name]}", _ms(ttl_seconds)]
                if isinstance(pipe, ClusterPipeline):
                    # redis-py refuses EVALSHA in a cluster pipeline; a plain
                    # EVAL (the script is short) is routed by its key, and the
                    # pipeline sends each node its share in one round trip.
                    pipe.execute_command("EVAL", _RENEW, 1, *keys, *args)
                else:
                    await self._renew(keys=keys, args=args, client=pipe)
            results = await pipe.execute()
        return [name for name, ok in zip(names, results, strict=True) if not ok]

    async def release(self, name: str, token: int) -> None:
        async with _command():
            await self._delete_if(keys=[self._key(name, "lease")], args=[f"{self.instance_id}:{token}"])

    # -- call identity --------------------------------------------------------------
    async def claim_call(self, scope: str, key: str, proposed: str, ttl_seconds: int) -> str:
        async with _command():
            held = await self._claim(
                keys=[self._key(scope, "calls")], args=[key, proposed, max(1, ttl_seconds)]
            )
        return str(held)

    async def end_call(self, scope: str, key: str, call_id: str) -> None:
        async with _command():
            await self._end_call(keys=[self._key(scope, "calls")], args=[key, call_id])

    async def open_calls(self, scope: str) -> dict[str, str]:
        async with _command():
            held = await self._redis.hgetall(self._key(scope, "calls"))
        return {str(k): str(v) for k, v in held.items()}

    # -- publications ---------------------------------------------------------------
    async def save_publication(
        self,
        entity: str,
        publication_id: str,
        expected_etag: str | None,
        record: str,
        expires_at_ms: int,
    ) -> bool:
        key = self._key(entity, f"pub:{publication_id}")
        # The record's TTL runs on Redis's clock, its expiry on ours: a grace covers the difference.
        ttl_ms = max(1, expires_at_ms - _now_ms()) + _RECORD_GRACE_MS
        async with _command():
            saved = await self._save(keys=[key], args=[expected_etag or "", record, ttl_ms])
            if saved:
                await self._redis.zadd(self._index_key(), {_member(entity, publication_id): expires_at_ms})
        return bool(saved)

    async def remove_publication(self, entity: str, publication_id: str, etag: str) -> str | None:
        async with _command():
            held = await self._remove(keys=[self._key(entity, f"pub:{publication_id}")], args=[etag])
            if held is not None:
                await self._redis.zrem(self._index_key(), _member(entity, publication_id))
        return None if held is None else str(held)

    async def take_expired_publications(self, now_ms: int, limit: int) -> list[str]:
        index = self._index_key()
        taken: list[str] = []
        async with _command():
            due = await self._redis.zrangebyscore(index, "-inf", now_ms, start=0, num=limit)
            for found in due:
                member = str(found)
                # ZREM decides which instance looks at it; the record's own
                # expiry (a refresh may have moved it) decides whether it ends.
                if not await self._redis.zrem(index, member):
                    continue
                entity, _, publication_id = member.rpartition("\n")
                held = await self._take(keys=[self._key(entity, f"pub:{publication_id}")], args=[now_ms])
                if held is not None:
                    taken.append(str(held))
                else:
                    record = await self._redis.get(self._key(entity, f"pub:{publication_id}"))
                    if record is not None:  # refreshed meanwhile: back in the index
                        expires = json.loads(record).get("expires_ms")
                        if isinstance(expires, int):
                            await self._redis.zadd(index, {member: expires})
        return taken


def _member(entity: str, publication_id: str) -> str:
    return f"{entity}\n{publication_id}"


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _now_ms() -> int:
    return int(time.time() * 1000)


@contextlib.asynccontextmanager
async def _command() -> AsyncIterator[None]:
    """Redis trouble as ``BrokerUnavailable``, under a deadline."""
    try:
        async with asyncio.timeout(_COMMAND_SECONDS):
            yield
    except (RedisError, RedisClusterException, OSError) as exc:
        raise BrokerUnavailable(f"redis: {exc}") from exc
