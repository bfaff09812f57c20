"""The Redis broker: state, history and fan-out shared by many instances.

- A call's state is a string key, advanced by compare-and-set in a Lua
  script that also appends the emitted events to the user's stream (the
  history) and publishes them, so state and events change together or not
  at all. The process remembers recent calls' states and tries the script
  with the remembered one first; the script stays the judge.
- History is a Redis stream per user, trimmed to about ``history_size``;
  its ids are the SSE event ids.
- Live fan-out uses ONE pub/sub connection per process, subscribed to the
  channel of each user that has a stream open here. A connection per
  stream would exhaust Redis and the process at a few thousand streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from gateway.broker.base import Broker, BrokerUnavailable, Conflict, Join, Step
from gateway.config import Settings
from gateway.model import CallState
from gateway.wire import Envelope, EventId, decode_state, encode_event, encode_state, parse_event_id

log = logging.getLogger("gateway.broker.redis")

# KEYS: state, history, and for a call that may join a dialled one (see
# docs/dialling.md#joining): its binding, the user's pending dial to its
# other party, the state of the dialled call its source named. ARGV:
# expected state ("" = none), new state ("" = unchanged), ttl, history
# length, channel, the dialled call the source named ("" = none), event
# JSON... On a mismatch the reply carries the state found, so the caller can
# retry without a GET; a call with no state of its own that turns out to be
# a dialled call is answered with that call's key instead (the join is
# decided here, atomically, once for every instance).
_ADVANCE = """
local current = redis.call('GET', KEYS[1])
if current == false then current = '' end
if current == '' and #KEYS > 2 then
  local dial = redis.call('GET', KEYS[3])
  if dial then return {'join', dial} end
  if ARGV[6] ~= '' and redis.call('EXISTS', KEYS[5]) == 1 then
    dial = ARGV[6]
  elseif KEYS[4] ~= KEYS[3] then
    dial = redis.call('GET', KEYS[4])
    if dial then redis.call('DEL', KEYS[4]) end
  end
  if dial then
    redis.call('SET', KEYS[3], dial, 'EX', ARGV[3])
    return {'join', dial}
  end
end
if current ~= ARGV[1] then return {'conflict', current} end
if ARGV[2] ~= '' then redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) end
local out = {'ok'}
for i = 7, #ARGV do
  local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'd', ARGV[i])
  redis.call('PUBLISH', ARGV[5], id .. ' ' .. ARGV[i])
  out[#out + 1] = id
end
if #out > 1 then redis.call('EXPIRE', KEYS[2], ARGV[3]) end
return out
"""

# KEYS: a request key. ARGV: value, ttl. The value held, or nil once kept.
_CLAIM = """
local held = redis.call('GET', KEYS[1])
if held then return held end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return false
"""

# KEYS: a pending dial. ARGV: the dial's key. 1 if it was still unclaimed.
_FORGET = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: a user's acknowledged position. ARGV: an event id, ttl. The position
# only moves forward (ids compare as <ms>-<seq>); the one held is returned.
_ACKNOWLEDGE = """
local held = redis.call('GET', KEYS[1])
if held then
  local hm, hs = string.match(held, '^(%d+)-(%d+)$')
  local nm, ns = string.match(ARGV[1], '^(%d+)-(%d+)$')
  hm, hs, nm, ns = tonumber(hm), tonumber(hs), tonumber(nm), tonumber(ns)
  if hm and (hm > nm or (hm == nm and hs >= ns)) then
    redis.call('EXPIRE', KEYS[1], ARGV[2])
    return held
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return ARGV[1]
"""

# KEYS: a rate window (a sorted set: one member per use, scored by its time
# in ms). ARGV: limit, window length in ms, a member unique to this use.
# Nil once counted; else the ms until a use leaves the window. Redis's own
# clock, so instances with drifting clocks share one window.
_TAKE_SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= limit then
  local blocking = redis.call('ZRANGE', KEYS[1], -limit, -limit, 'WITHSCORES')
  return tonumber(blocking[2]) + window - now
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return false
"""

_MAX_RETRIES = 20
_EMPTY = (0, 0)
# Calls whose last known state this process keeps, so that the usual signal
# costs one round trip (the script) instead of two (GET, then the script).
_KNOWN_CALLS = 10_000
# Every command runs under this deadline (our own, not redis-py's
# socket_timeout, which on Python 3.11 costs a task per command sent).
_COMMAND_SECONDS = 5.0
_CONNECTIONS = 100  # per process, the pub/sub connection included
_NOT_SEEN: tuple[str, CallState | None] = ("", None)
# Calls of sources this process saw joined to a dialled call.
_KNOWN_JOINS = 10_000


class RedisBroker(Broker):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.history_size, settings.stream_buffer, settings.streams_per_user)
        assert settings.redis_url
        self._url = settings.redis_url
        self._prefix = settings.key_prefix
        self._ttl = settings.call_ttl_seconds
        # More commands at once than connections (e.g. hundreds of streams
        # opening together) wait for one, rather than fail with "Too many
        # connections"; the caller's deadline bounds the wait.
        pool = aioredis.BlockingConnectionPool.from_url(
            self._url,
            max_connections=_CONNECTIONS,
            timeout=None,
            decode_responses=True,
            socket_connect_timeout=2,
            socket_timeout=None,
        )
        self._redis: aioredis.Redis = aioredis.Redis.from_pool(pool)
        self._advance = self._redis.register_script(_ADVANCE)
        self._claim = self._redis.register_script(_CLAIM)
        self._forget = self._redis.register_script(_FORGET)
        self._acknowledge = self._redis.register_script(_ACKNOWLEDGE)
        self._take_slot = self._redis.register_script(_TAKE_SLOT)
        # state key of a source's call -> the dialled call it joined.
        self._joins: dict[str, str] = {}
        # Insertion-ordered: the first entry is the one least recently written.
        self._known: dict[str, tuple[str, CallState | None]] = {}
        self._pubsub: PubSub | None = None
        self._listener: asyncio.Task[None] | None = None
        self._confirmed: dict[str, asyncio.Future[None]] = {}
        self._sub_lock = asyncio.Lock()
        self._healthy = False
        self._stopping = False

    # -- keys --------------------------------------------------------------
    # The user id in braces is a cluster hash tag: a user's keys share a slot.
    def _state_key(self, user_id: str, call_key: str) -> str:
        return f"{self._prefix}:{{{user_id}}}:call:{call_key}"

    def _history_key(self, user_id: str) -> str:
        return f"{self._prefix}:{{{user_id}}}:history"

    def _burnt_key(self, token_id: str) -> str:
        return f"{self._prefix}:burnt:{token_id}"

    def _bound_key(self, user_id: str, call_key: str) -> str:
        return f"{self._prefix}:{{{user_id}}}:joins:{call_key}"

    def _pending_key(self, user_id: str, remote: str) -> str:
        return f"{self._prefix}:{{{user_id}}}:dialling:{remote}"

    def _request_key(self, user_id: str, request_key: str) -> str:
        return f"{self._prefix}:{{{user_id}}}:dial-request:{request_key}"

    def _claimed_key(self, user_id: str, event_id: str) -> str:
        return f"{self._prefix}:{{{user_id}}}:claimed:{event_id}"

    def _acked_key(self, user_id: str) -> str:
        return f"{self._prefix}:{{{user_id}}}:acked"

    def _window_key(self, user_id: str, name: str) -> str:
        return f"{self._prefix}:{{{user_id}}}:rate:{name}"

    def _channel(self, user_id: str) -> str:
        return f"{self._prefix}:live:{user_id}"

    # -- lifecycle ---------------------------------------------------------
    async def start(self) -> None:
        self._stopping = False
        self._listener = asyncio.create_task(self._listen_forever(), name="redis-pubsub")

    async def close(self) -> None:
        self._stopping = True
        await super().close()
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
        await self._redis.aclose()

    async def ping(self) -> bool:
        try:
            async with _command():
                return bool(await self._redis.ping()) and self._healthy
        except BrokerUnavailable:
            return False

    # -- state -------------------------------------------------------------
    async def transact(
        self, user_id: str, call_key: str, step: Step, join: Join | None = None
    ) -> list[Envelope]:
        state_key = self._state_key(user_id, call_key)
        history_key = self._history_key(user_id)
        keys = [state_key, history_key]
        hint = ""
        if join is not None:
            joined = self._joins.get(state_key)
            if joined is not None:
                # Seen joined here before: straight to the dialled call.
                state_key = self._state_key(user_id, joined)
                keys, step, join = [state_key, history_key], join.rekey(joined), None
            else:
                bound = self._bound_key(user_id, call_key)
                pending = bound if join.remote is None else self._pending_key(user_id, join.remote)
                hinted = bound if join.dial_key is None else self._state_key(user_id, join.dial_key)
                keys = [state_key, history_key, bound, pending, hinted]
                hint = join.dial_key or ""
        # The first try assumes the state this process last saw (none for a
        # call it has not seen). The script compares it with the stored one
        # and, if another instance moved the call on, answers with that
        # state, which the next try starts from.
        raw, current = self._known.get(state_key, _NOT_SEEN)
        confirmed = False
        async with _command():
            for _ in range(_MAX_RETRIES):
                try:
                    new, events = step(current)
                except Exception:
                    if confirmed:
                        raise
                    # The step refused the assumed state (e.g. "unknown
                    # call"); it decides again on the stored one.
                    raw = str(await self._redis.get(state_key) or "")
                    current = self._decode(raw)
                    confirmed = True
                    continue
                new_raw = "" if new is None else encode_state(new)
                if new_raw == raw and not events:
                    if confirmed:
                        return []
                    # Nothing to change, but only by an assumed state:
                    # an empty write checks it against the stored one.
                    new_raw = ""
                payloads = [encode_event(new, e) for e in events] if new is not None else []
                result: list[str] = await self._advance(
                    keys=keys,
                    args=[
                        raw,
                        new_raw,
                        self._ttl,
                        self.history_size,
                        self._channel(user_id),
                        hint,
                        *payloads,
                    ],
                )
                if result[0] == "ok":
                    if new_raw:
                        self._remember(state_key, new_raw, new)
                    return [Envelope(i, p) for i, p in zip(result[1:], payloads, strict=True)]
                if result[0] == "join":
                    assert join is not None
                    self._remember_join(state_key, result[1])
                    state_key = self._state_key(user_id, result[1])
                    keys, step, join, hint = [state_key, history_key], join.rekey(result[1]), None, ""
                    raw, current = self._known.get(state_key, _NOT_SEEN)
                    confirmed = False
                    continue
                raw = result[1]
                current = self._decode(raw)
                confirmed = True
                self._remember(state_key, raw, current)
        raise Conflict(f"call {call_key} kept changing; gave up after {_MAX_RETRIES} tries")

    def _remember_join(self, state_key: str, dial_key: str) -> None:
        self._joins[state_key] = dial_key
        if len(self._joins) > _KNOWN_JOINS:
            del self._joins[next(iter(self._joins))]

    # -- dialling (gateway.dial) ---------------------------------------------
    async def expect_dial(self, user_id: str, remote: str, dial_key: str, seconds: float) -> None:
        async with _command():
            await self._redis.set(
                self._pending_key(user_id, remote), dial_key, px=max(1, int(seconds * 1000))
            )

    async def forget_dial(self, user_id: str, remote: str, dial_key: str) -> bool:
        async with _command():
            return bool(await self._forget(keys=[self._pending_key(user_id, remote)], args=[dial_key]))

    async def bind_call(self, user_id: str, call_key: str, dial_key: str) -> None:
        async with _command():
            await self._redis.set(self._bound_key(user_id, call_key), dial_key, ex=self._ttl)
        self._remember_join(self._state_key(user_id, call_key), dial_key)

    async def claim_request(self, user_id: str, request_key: str, value: str, seconds: float) -> str | None:
        async with _command():
            held = await self._claim(
                keys=[self._request_key(user_id, request_key)], args=[value, max(1, int(seconds))]
            )
        return None if held is None else str(held)

    async def settle_request(self, user_id: str, request_key: str, value: str | None, seconds: float) -> None:
        key = self._request_key(user_id, request_key)
        async with _command():
            if value is None:
                await self._redis.delete(key)
            else:
                await self._redis.set(key, value, ex=max(1, int(seconds)))

    # -- rate windows (gateway.dial's per-user dial limit) ----------------------
    async def take_slot(self, user_id: str, name: str, limit: int, seconds: float) -> float | None:
        async with _command():
            wait_ms = await self._take_slot(
                keys=[self._window_key(user_id, name)],
                args=[limit, max(1, int(seconds * 1000)), secrets.token_hex(8)],
            )
        return None if wait_ms is None else int(wait_ms) / 1000

    @staticmethod
    def _decode(raw: str) -> CallState | None:
        return decode_state(raw) if raw else None

    def _remember(self, state_key: str, raw: str, state: CallState | None) -> None:
        known = self._known
        known.pop(state_key, None)
        if raw:
            known[state_key] = (raw, state)
            if len(known) > _KNOWN_CALLS:
                del known[next(iter(known))]

    async def get_call(self, user_id: str, call_key: str) -> CallState | None:
        async with _command():
            raw = await self._redis.get(self._state_key(user_id, call_key))
        return None if raw is None else decode_state(str(raw))

    # -- one-use credentials -------------------------------------------------
    async def burn(self, token_id: str, ttl_seconds: int) -> bool:
        # SET NX: of any number of instances asking at once, one wins.
        async with _command():
            first = await self._redis.set(self._burnt_key(token_id), "1", nx=True, ex=max(1, ttl_seconds))
        return bool(first)

    # -- delivery to HubSpot: claims and the acknowledged position ---------------
    async def claim_event(self, user_id: str, event_id: str) -> bool:
        # SET NX: of pages asking at once, on any instance, one wins.
        async with _command():
            first = await self._redis.set(self._claimed_key(user_id, event_id), "1", nx=True, ex=self._ttl)
        return bool(first)

    async def acknowledge(self, user_id: str, event_id: str) -> str:
        async with _command():
            held = await self._acknowledge(keys=[self._acked_key(user_id)], args=[event_id, self._ttl])
        return str(held)

    async def acknowledged(self, user_id: str) -> str | None:
        async with _command():
            held = await self._redis.get(self._acked_key(user_id))
        return None if held is None else str(held)

    # -- history -----------------------------------------------------------
    async def _head(self, user_id: str) -> EventId:
        async with _command():
            newest = await self._redis.xrevrange(self._history_key(user_id), count=1)
        # An empty history's head is 0-0: every id Redis will give is newer.
        return (parse_event_id(str(newest[0][0])) if newest else None) or _EMPTY

    async def _replay(self, user_id: str, after: EventId) -> tuple[list[Envelope], bool]:
        start = f"{after[0]}-{after[1]}"
        if after == _EMPTY:
            return await self._replay_all(user_id)
        # Inclusive of ``after``: if that entry is still there, nothing
        # between it and now can have been trimmed.
        async with _command():
            found = await self._redis.xrange(self._history_key(user_id), min=start, max="+")
        rows = [(str(i), dict(f or {})) for i, f in found or []]
        gap = not rows or rows[0][0] != start
        if gap and not rows:
            # Nothing newer and the entry itself is gone: a gap only if
            # anything was ever trimmed (or Redis lost its data).
            gap = await self._lost_since(user_id, after)
        envelopes = [Envelope(i, str(fields["d"])) for i, fields in rows if i != start]
        return envelopes, gap

    async def _replay_all(self, user_id: str) -> tuple[list[Envelope], bool]:
        """Resuming from the hello of an empty history: all of it was missed.

        If some of it was trimmed already, that is a gap: the stream counts
        every entry it was ever given, and holds fewer. Read in one
        transaction, so that an entry added in between is not taken for one
        lost.
        """
        key = self._history_key(user_id)
        async with _command(), self._redis.pipeline(transaction=True) as pipe:
            pipe.xrange(key, min="-", max="+")
            pipe.xinfo_stream(key)
            # XINFO fails on a history that does not exist (yet, or any more).
            found, info = await pipe.execute(raise_on_error=False)
        if isinstance(found, Exception):
            raise BrokerUnavailable(f"redis: {found}")
        envelopes = [Envelope(str(i), str((f or {})["d"])) for i, f in found or []]
        if not envelopes:
            return [], False
        added = info.get("entries-added") if isinstance(info, dict) else None
        if added is None:
            # Redis before 7.0 does not count: trimming keeps at least
            # history_size entries, so fewer means nothing was trimmed.
            return envelopes, len(envelopes) >= self.history_size
        return envelopes, int(added) > len(envelopes)

    async def _lost_since(self, user_id: str, after: EventId) -> bool:
        try:
            async with _command():
                info: dict[str, Any] = await self._redis.xinfo_stream(self._history_key(user_id))
        except BrokerUnavailable:
            return True
        last = parse_event_id(str(info.get("last-generated-id", "")))
        return last is None or last != after

    # -- live fan-out --------------------------------------------------------
    async def _listen(self, user_id: str, first: bool) -> None:
        channel = self._channel(user_id)
        # SUBSCRIBE and UNSUBSCRIBE go out one at a time, in the order they
        # are decided, so Redis never ends up unsubscribed from a channel a
        # stream here still needs.
        async with self._sub_lock:
            pending = self._confirmed.get(channel)
            if pending is None:
                if self._pubsub is None or not self._healthy:
                    raise BrokerUnavailable("redis pub/sub is not connected")
                pending = asyncio.get_running_loop().create_future()
                self._confirmed[channel] = pending
                try:
                    async with _command():
                        await self._pubsub.subscribe(channel)
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
            channel = self._channel(user_id)
            self._confirmed.pop(channel, None)
            if self._pubsub is not None and self._healthy:
                async with _command():
                    await self._pubsub.unsubscribe(channel)

    async def _listen_forever(self) -> None:
        delay = 0.1
        live_prefix = f"{self._prefix}:live:"
        while not self._stopping:
            pubsub = self._redis.pubsub()
            try:
                # A control channel opens the connection before any stream
                # needs it.
                await pubsub.subscribe(f"{self._prefix}:control")
                self._pubsub = pubsub
                self._healthy = True
                delay = 0.1
                log.info("redis pub/sub connected")
                while True:
                    message = await pubsub.get_message(timeout=30)
                    if message is None:
                        await pubsub.ping()
                        continue
                    kind = message["type"]
                    channel = message["channel"]
                    if kind == "message" and channel.startswith(live_prefix):
                        event_id, _, data = message["data"].partition(" ")
                        self._deliver(channel[len(live_prefix) :], Envelope(event_id, data))
                    elif kind == "subscribe":
                        future = self._confirmed.get(channel)
                        if future is not None and not future.done():
                            future.set_result(None)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if self._stopping:
                    return
                log.warning("redis pub/sub lost (%s); streams here will resume from history", exc)
            self._healthy = False
            self._pubsub = None
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
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
            delay = min(delay * 2, 5.0)


@contextlib.asynccontextmanager
async def _command() -> AsyncIterator[None]:
    """One exchange with Redis under our deadline.

    The one place where Redis trouble becomes ``BrokerUnavailable``: a
    refused or lost connection, a Redis error reply, or the deadline
    (``TimeoutError`` is an ``OSError``).
    """
    try:
        async with asyncio.timeout(_COMMAND_SECONDS):
            yield
    except (RedisError, OSError) as exc:
        raise BrokerUnavailable(f"redis: {exc}") from exc


def _ignore_result(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.debug("unsubscribe failed: %s", task.exception())
