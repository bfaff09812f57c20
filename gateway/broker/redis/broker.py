"""The Redis broker: state, history and fan-out shared by many instances.

- A call's state is a string key, advanced by compare-and-set in a Lua
  script that also appends the emitted events to the user's stream (the
  history) and publishes them, so state and events change together or not
  at all (``calls``).
- History is a Redis stream per user, trimmed to about ``history_size``;
  its ids are the SSE event ids (here).
- Live fan-out uses ONE pub/sub connection per process (``fanout``).
- Redis losing data is detected and repaired (``recovery``).
- One server, Sentinel or Cluster: ``topology``.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from gateway.auth.throttle import LoginThrottle
from gateway.broker.base import WRAP_UPS_PER_USER, BrokerUnavailable, Join, Step
from gateway.broker.dial_holds import DialHolds
from gateway.broker.redis import scripts
from gateway.broker.redis.commands import command
from gateway.broker.redis.dial_holds import SharedDialHolds
from gateway.broker.redis.fanout import Fanout
from gateway.broker.shared_logins import SharedLoginThrottle
from gateway.model import CallState
from gateway.wire import Envelope, EventId, decode_state, parse_event_id

_EMPTY = (0, 0)


class RedisBroker(Fanout):
    # -- state -------------------------------------------------------------
    async def transact(
        self, user_id: str, call_key: str, step: Step, join: Join | None = None
    ) -> list[Envelope]:
        if not self._open():
            await self._gate()
        return await self._transact(user_id, call_key, step, join)

    # -- dialling (gateway.dial) ---------------------------------------------
    async def expect_dial(self, user_id: str, remote: str, dial_key: str, seconds: float) -> None:
        async with command():
            await self._redis.set(
                self._keys.pending(user_id, remote), dial_key, px=max(1, int(seconds * 1000))
            )

    async def forget_dial(self, user_id: str, remote: str, dial_key: str) -> bool:
        async with command():
            return bool(await self._forget(keys=[self._keys.pending(user_id, remote)], args=[dial_key]))

    async def bind_call(self, user_id: str, call_key: str, dial_key: str) -> None:
        async with command():
            await self._redis.set(self._keys.bound(user_id, call_key), dial_key, ex=self._ttl)
        self._remember_join(self._keys.state(user_id, call_key), dial_key)

    async def claim_request(self, user_id: str, request_key: str, value: str, seconds: float) -> str | None:
        async with command():
            held = await self._claim(
                keys=[self._keys.request(user_id, request_key)], args=[value, max(1, int(seconds))]
            )
        return None if held is None else str(held)

    async def settle_request(self, user_id: str, request_key: str, value: str | None, seconds: float) -> None:
        key = self._keys.request(user_id, request_key)
        async with command():
            if value is None:
                await self._redis.delete(key)
            else:
                await self._redis.set(key, value, ex=max(1, int(seconds)))

    # -- failed logins, counted for every instance ------------------------------
    def login_throttle(self) -> LoginThrottle:
        return SharedLoginThrottle(self._prefix, self._run_script)

    # -- click-to-dial's held ends, shared by every instance ----------------------
    def dial_holds(self) -> DialHolds:
        return SharedDialHolds(self._keys, self._run_script)

    async def _run_script(self, source: str, keys: list[str], args: list[Any]) -> Any:
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = self._redis.register_script(source)
        async with command():
            return await script(keys=keys, args=args)

    # -- rate windows (gateway.dial's per-user dial limit) ----------------------
    async def take_slot(self, user_id: str, name: str, limit: int, seconds: float) -> float | None:
        async with command():
            wait_ms = await self._take_slot(
                keys=[self._keys.window(user_id, name)],
                args=[limit, max(1, int(seconds * 1000)), secrets.token_hex(8)],
            )
        return None if wait_ms is None else int(wait_ms) / 1000

    async def get_call(self, user_id: str, call_key: str) -> CallState | None:
        async with command():
            raw = await self._redis.get(self._keys.state(user_id, call_key))
        return None if raw is None else decode_state(str(raw))

    # -- one-use credentials -------------------------------------------------
    async def burn(self, token_id: str, ttl_seconds: int) -> bool:
        # SET NX: of any number of instances asking at once, one wins.
        async with command():
            first = await self._redis.set(self._keys.burnt(token_id), "1", nx=True, ex=max(1, ttl_seconds))
        return bool(first)

    async def unburn(self, token_id: str) -> None:
        async with command():
            await self._redis.delete(self._keys.burnt(token_id))

    # -- small values with a lifetime (gateway.recordings) ------------------------
    async def put_value(self, key: str, value: str, seconds: int) -> None:
        async with command():
            await self._redis.set(self._keys.value(key), value, ex=max(1, seconds))

    async def get_value(self, key: str) -> str | None:
        async with command():
            held = await self._redis.get(self._keys.value(key))
        return None if held is None else str(held)

    # -- delivery to HubSpot: claims and the acknowledged position ---------------
    async def claim_event(self, user_id: str, event_id: str) -> bool:
        # SET NX: of pages asking at once, on any instance, one wins.
        async with command():
            first = await self._redis.set(self._keys.claimed(user_id, event_id), "1", nx=True, ex=self._ttl)
        return bool(first)

    async def acknowledge(self, user_id: str, event_id: str) -> str:
        async with command():
            held = await self._acknowledge(keys=[self._keys.acked(user_id)], args=[event_id, self._ttl])
        return str(held)

    async def acknowledged(self, user_id: str) -> str | None:
        async with command():
            held = await self._redis.get(self._keys.acked(user_id))
        return None if held is None else str(held)

    async def history_event(self, user_id: str, event_id: str) -> Envelope | None:
        async with command():
            found = await self._redis.xrange(self._keys.history(user_id), min=event_id, max=event_id, count=1)
        if not found:
            return None
        entry_id, fields = found[0]
        return Envelope(str(entry_id), str(dict(fields or {}).get("d", "")))

    # -- wrap-ups kept for the page: a hash per user (scripts.KEEP_WRAP_UP) ---------
    async def keep_wrap_up(self, user_id: str, call_key: str, kept: str) -> None:
        # Wall-clock expiries: every instance reads them, and hosts' clocks agree well enough.
        now_ms = int(time.time() * 1000)
        await self._run_script(
            scripts.KEEP_WRAP_UP,
            [self._keys.wrap_ups(user_id)],
            [call_key, kept, now_ms, self._ttl * 1000, WRAP_UPS_PER_USER],
        )

    async def kept_wrap_ups(self, user_id: str) -> dict[str, str]:
        async with command():
            held = await self._redis.hgetall(self._keys.wrap_ups(user_id))
        now_ms = int(time.time() * 1000)
        kept: dict[str, str] = {}
        for call, stored in (held or {}).items():
            expiry, _, value = str(stored).partition(":")
            if expiry.isdigit() and int(expiry) > now_ms:
                kept[str(call)] = value
        return kept

    async def drop_wrap_up(self, user_id: str, call_key: str) -> None:
        async with command():
            await self._redis.hdel(self._keys.wrap_ups(user_id), call_key)

    # -- history -----------------------------------------------------------
    async def _head(self, user_id: str) -> EventId:
        async with command():
            newest = await self._redis.xrevrange(self._keys.history(user_id), count=1)
        # An empty history's head is 0-0: every id Redis will give is newer.
        return (parse_event_id(str(newest[0][0])) if newest else None) or _EMPTY

    async def _replay(self, user_id: str, after: EventId) -> tuple[list[Envelope], bool]:
        start = f"{after[0]}-{after[1]}"
        if after == _EMPTY:
            return await self._replay_all(user_id)
        # Inclusive of ``after``: if that entry is still there, nothing
        # between it and now can have been trimmed.
        async with command():
            found = await self._redis.xrange(self._keys.history(user_id), min=start, max="+")
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
        key = self._keys.history(user_id)
        async with command(), self._redis.pipeline(transaction=True) as pipe:
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
            async with command():
                info: dict[str, Any] = await self._redis.xinfo_stream(self._keys.history(user_id))
        except BrokerUnavailable:
            return True
        last = parse_event_id(str(info.get("last-generated-id", "")))
        return last is None or last != after
