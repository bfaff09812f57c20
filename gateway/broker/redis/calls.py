"""A call's state in Redis, advanced by compare-and-set.

The script (``scripts.ADVANCE``) compares the state, writes the new one,
appends the emitted events to the user's history and publishes them, all
at once or not at all. The process remembers recent calls' states and tries
the script with the remembered one first; the script stays the judge.
What it remembers is also what is written back after Redis lost data
(``gateway.broker.redis.recovery``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ResponseError

from gateway.broker.base import BrokerUnavailable, Conflict, Join, Step
from gateway.broker.redis import commands, direct
from gateway.broker.redis.topology import RedisTopology
from gateway.config import Settings
from gateway.model import CallState, combine
from gateway.wire import Envelope, decode_state, encode_event, encode_state

_MAX_RETRIES = 20
# Calls whose last known state this process keeps, so that the usual signal
# costs one round trip (the script) instead of two (GET, then the script).
_KNOWN_CALLS = 10_000
_NOT_SEEN: tuple[str, CallState | None, float] = ("", None, 0.0)
# Calls of sources this process saw joined to a dialled call.
_KNOWN_JOINS = 10_000
# An advance script waiting to go out: keys, arguments, its caller's answer, deadline.
_Queued = tuple[list[str], list[Any], asyncio.Future[list[str]], float]


class CallStore(RedisTopology):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        # state key of a source's call -> the dialled call it joined.
        self._joins: dict[str, str] = {}
        # Insertion-ordered: the first entry is the one least recently written.
        # (raw, state, when it was written: time.monotonic()). Besides
        # saving a round trip, this is what is written back after Redis
        # lost data.
        self._known: dict[str, tuple[str, CallState | None, float]] = {}
        # Script calls waiting to go out together (``_advance_batched``).
        self._batch: list[_Queued] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def _advance_batched(self, keys: list[str], args: list[Any], deadline: float) -> list[str]:
        """Run the advance script; calls made in the same turn of the event loop share one round trip.

        Signals that arrive together (an ingest request's, several
        requests read at once) are advanced by one pipeline: one write and
        one read for all of them instead of one each, which is most of the
        cost of a signal. Each script stays its own atomic step, and Redis
        runs them in the order they were asked for. On a cluster each goes
        alone (a pipeline there is split by node anyway). ``deadline`` is
        the caller's, in loop time.
        """
        if isinstance(self._redis, RedisCluster):
            async with asyncio.timeout_at(deadline):
                result: list[str] = await self._advance(keys=keys, args=args)
            return result
        future: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
        self._batch.append((keys, args, future, deadline))
        if len(self._batch) == 1:
            # After every task already runnable in this turn had its say.
            asyncio.get_running_loop().call_soon(self._flush_batch)
        return await future

    def _flush_batch(self) -> None:
        batch, self._batch = self._batch, []
        task = asyncio.get_running_loop().create_task(self._send_batch(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send_batch(self, batch: list[_Queued]) -> None:
        """One pipeline of advance scripts, written and read directly (``direct.exchange``).

        One deadline for the lot: the earliest of its callers'.
        """
        assert not isinstance(self._redis, RedisCluster)
        try:
            async with asyncio.timeout_at(min(deadline for _, _, _, deadline in batch)):
                pool, sha = self._redis.connection_pool, self._advance.sha
                run = [("EVALSHA", sha, len(keys), *keys, *args) for keys, args, _, _ in batch]
                results = await direct.exchange(pool, run)
                again = [i for i, result in enumerate(results) if _unknown_script(result)]
                if again:
                    # Redis does not know the script (yet, or any more: a
                    # restart, a failover, SCRIPT FLUSH): loaded once, then
                    # those scripts again in one round trip, in their order.
                    load = ("SCRIPT", "LOAD", cast(str, self._advance.script))
                    retried = await direct.exchange(pool, [load, *(run[i] for i in again)])
                    for i, result in zip(again, retried[1:], strict=True):
                        results[i] = result
                for (_, _, future, _), result in zip(batch, results, strict=True):
                    if future.done():
                        continue
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(cast(list[str], result))
        except BaseException as exc:  # the callers turn it into BrokerUnavailable
            for _, _, future, _ in batch:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else ConnectionError("cancelled"))
            if not isinstance(exc, Exception):
                raise

    async def _transact(
        self, user_id: str, call_key: str, step: Step, join: Join | None = None
    ) -> list[Envelope]:
        # One deadline for every round trip of the call together (the
        # retries, a read of the stored state): a value handed down, not
        # a timer per command.
        deadline = asyncio.get_running_loop().time() + commands.COMMAND_SECONDS
        try:
            return await self._advance_call(user_id, call_key, step, join, deadline)
        except commands.REDIS_TROUBLE as exc:
            raise commands.unavailable(exc) from exc

    async def _advance_call(
        self, user_id: str, call_key: str, step: Step, join: Join | None, deadline: float
    ) -> list[Envelope]:
        state_key = self._keys.state(user_id, call_key)
        history_key = self._keys.history(user_id)
        keys = [state_key, history_key]
        hint = ""
        if join is not None:
            joined = self._joins.get(state_key)
            if joined is not None:
                # Seen joined here before: straight to the dialled call.
                state_key = self._keys.state(user_id, joined)
                keys, step, join = [state_key, history_key], join.rekey(joined), None
            else:
                bound = self._keys.bound(user_id, call_key)
                pending = bound if join.remote is None else self._keys.pending(user_id, join.remote)
                hinted = bound if join.dial_key is None else self._keys.state(user_id, join.dial_key)
                keys = [state_key, history_key, bound, pending, hinted]
                hint = join.dial_key or ""
        # The first try assumes the state this process last saw (none for a
        # call it has not seen). The script compares it with the stored one
        # and, if another instance moved the call on, answers with that
        # state, which the next try starts from.
        raw, current, _ = self._known.get(state_key, _NOT_SEEN)
        confirmed = False
        # On a cluster, the run id of the primary a script was redirected
        # to (``_checked_elsewhere``), compared from then on.
        redirected = ""
        for _ in range(_MAX_RETRIES):
            try:
                new, events = step(current)
            except Exception:
                if confirmed:
                    raise
                # The step refused the assumed state (e.g. "unknown
                # call"); it decides again on the stored one.
                async with asyncio.timeout_at(deadline):
                    raw = str(await self._redis.get(state_key) or "")
                current = self._decode(raw)
                confirmed = True
                continue
            new_raw = "" if new is None else encode_state(new)
            sent = time.monotonic()
            if new_raw == raw and not events:
                if confirmed:
                    return []
                # Nothing to change, but only by an assumed state:
                # an empty write checks it against the stored one.
                new_raw = ""
            payloads = [encode_event(new, e) for e in events] if new is not None else []
            run_id = redirected or await self._checked_run_id(state_key, deadline)
            result = await self._advance_batched(
                keys,
                [
                    raw,
                    new_raw,
                    self._ttl,
                    self.history_size,
                    self._keys.channel(user_id),
                    hint,
                    run_id,
                    *payloads,
                ],
                deadline,
            )
            if result[0] == "restarted":
                if len(result) > 1 and await self._checked_elsewhere(state_key, run_id, result[1], deadline):
                    # Not a restart: the slot moved (MOVED) or is moving
                    # (ASK) to another primary this process checked, and
                    # the client followed it there; nothing was written.
                    redirected = result[1]
                    continue
                raise BrokerUnavailable("redis restarted; calls wait until it is checked for lost data")
            if result[0] == "ok":
                if new_raw:
                    self._remember(state_key, new_raw, new, sent)
                return [Envelope(i, p) for i, p in zip(result[1:], payloads, strict=True)]
            if result[0] == "join":
                assert join is not None
                self._remember_join(state_key, result[1])
                state_key = self._keys.state(user_id, result[1])
                keys, step, join, hint = [state_key, history_key], join.rekey(result[1]), None, ""
                raw, current, _ = self._known.get(state_key, _NOT_SEEN)
                confirmed = False
                continue
            raw = result[1]
            current = self._recall(state_key, self._decode(raw))
            confirmed = True
            self._remember(state_key, raw, current, sent)
        raise Conflict(f"call {call_key} kept changing; gave up after {_MAX_RETRIES} tries")

    def _remember_join(self, state_key: str, dial_key: str) -> None:
        self._joins[state_key] = dial_key
        if len(self._joins) > _KNOWN_JOINS:
            del self._joins[next(iter(self._joins))]

    @staticmethod
    def _decode(raw: str) -> CallState | None:
        return decode_state(raw) if raw else None

    def _recall(self, state_key: str, stored: CallState | None) -> CallState | None:
        """The stored state with what this process remembers of the call put back.

        Equal to the stored one unless Redis forgot something this process
        wrote or saw (lost data): then an answered call stays answered and
        nothing told is told again. A memory as old as the call's TTL is not
        used: Redis let the call expire, and it starts over.
        """
        _, known, written = self._known.get(state_key, _NOT_SEEN)
        if known is None or time.monotonic() - written >= self._ttl:
            return stored
        return known if stored is None else combine(stored, known)

    def _remember(self, state_key: str, raw: str, state: CallState | None, written: float) -> None:
        known = self._known
        known.pop(state_key, None)
        if raw:
            known[state_key] = (raw, state, written)
            if len(known) > _KNOWN_CALLS:
                del known[next(iter(known))]


def _unknown_script(result: object) -> bool:
    return isinstance(result, ResponseError) and str(result).startswith("NOSCRIPT")
