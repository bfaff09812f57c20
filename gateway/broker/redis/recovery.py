"""When Redis loses data: detect it, write back what this process remembers, hold calls meanwhile.

Redis losing data (a restart without persistence, a failover to a replica
that lagged) is detected by an epoch key and by Redis's run id, checked
whenever the pub/sub connection is made; the calls this process remembers
are then written back (merged, see ``gateway.model.combine``) and no call
advances until every instance had the time to do the same
(docs/design.md#when-redis-loses-data).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
import time

from gateway.broker.base import BrokerUnavailable
from gateway.broker.redis import commands
from gateway.broker.redis.calls import CallStore
from gateway.broker.redis.commands import command
from gateway.config import Settings
from gateway.model import restore
from gateway.wire import encode_state

log = logging.getLogger("gateway.broker.redis")

# After Redis lost data, how long calls wait for every instance to write
# back what it remembers: above the longest pub/sub reconnect delay (1 s)
# plus the time to write back the calls in progress (a full memory of
# 10,000 calls took about 2 s on the development machine).
_RECOVERY_SECONDS = 3.0
# After a loss, remembered calls are put back this many to a pipeline...
_RESTORE_BATCH = 500
# ...and those Redis holds another state of are merged this many at once.
_MERGE_BATCH = 64
# A window another instance announces is believed up to this long: the
# control channel is Redis's, but a bad value must not hold calls for days.
_MAX_ANNOUNCED_MS = int(10 * _RECOVERY_SECONDS * 1000)


class LossRecovery(CallStore):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        # What this process knows of the Redis it talks to: the epoch key's
        # value, and until when (loop time) calls wait after a loss.
        self._epoch = ""
        self._restore_owed = False
        self._recovering_until = 0.0
        # Set once the pub/sub connection is made and the epoch checked;
        # calls advance only then. ``_connecting``: an attempt is under way.
        self._ready = asyncio.Event()
        self._connecting = False

    def _open(self) -> bool:
        """Whether calls may advance now, without waiting (``_gate`` otherwise)."""
        return self._ready.is_set() and self._recovering_until <= asyncio.get_running_loop().time()

    async def _gate(self) -> None:
        """Wait until calls may advance: connected, the epoch checked, no recovery under way."""
        if not self._ready.is_set():
            if not self._connecting:
                raise BrokerUnavailable("redis pub/sub is not connected")
            try:
                async with asyncio.timeout(commands.COMMAND_SECONDS):  # not wait_for: outbox/worker.py
                    await self._ready.wait()
            except TimeoutError as exc:
                raise BrokerUnavailable("redis did not come back in time") from exc
        # Again after each wait: an instance still writing back may have
        # announced more time meanwhile.
        while (wait := self._recovering_until - asyncio.get_running_loop().time()) > 0:
            if wait > commands.COMMAND_SECONDS:
                raise BrokerUnavailable("redis lost its data; calls wait while it is restored")
            await asyncio.sleep(wait)

    # -- when Redis loses data --------------------------------------------------
    async def _recover(self) -> None:
        """Check on (re)connecting whether Redis lost data; if it may have, write back what is known.

        Redis lost its data when the epoch key this process knew is gone
        (or another instance found that first); it may have lost its last
        writes when its run id changed (a restart with persistence, a
        failover). Either way every instance writes back the calls it
        remembers, and calls wait until the window the epoch key names has
        passed, so that none advances on a state another instance has not
        restored yet.
        """
        async with command():
            nodes_before = self._node_run_ids
            run_id = await self._run_ids()
            restarted = (
                bool(self._run_id)
                and run_id != self._run_id
                and not resized_only(nodes_before, self._node_run_ids)
            )
            epoch, window_ms, verdict = await self._check_epoch(
                keys=[self._keys.epoch()],
                args=[self._epoch, secrets.token_hex(8), int(_RECOVERY_SECONDS * 1000), int(restarted)],
            )
        self._run_id = run_id
        self._epoch = str(epoch)
        # Never shortened: another instance may have announced a later end.
        until = asyncio.get_running_loop().time() + int(window_ms) / 1000
        self._recovering_until = max(self._recovering_until, until)
        if verdict in ("lost", "changed", "restarted"):
            # Owed until done: if writing back fails half-way (the
            # connection drops again), the next check finds the run id and
            # epoch already known, yet must write back all the same.
            self._restore_owed = True
        if self._restore_owed:
            # Instances that checked before the window opened wait too.
            async with command():
                await self._publish_control(f"recover {int(window_ms)}")
            restored = await self._restore()
            self._restore_owed = False
            log.warning(
                "redis %s (epoch %s); %d calls remembered here written back; calls wait %.1f s",
                "restarted" if verdict == "restarted" else "lost its data",
                self._epoch,
                restored,
                max(0.0, self._recovering_until - asyncio.get_running_loop().time()),
            )

    def _on_control(self, message: str) -> None:
        """Another instance found Redis lost data: calls here wait for the window it names too."""
        verb, _, argument = message.partition(" ")
        if verb != "recover" or not (argument.isascii() and argument.isdigit() and len(argument) <= 9):
            log.warning("redis control message not understood, ignored: %r", message[:80])
            return
        window_ms = min(int(argument), _MAX_ANNOUNCED_MS)
        until = asyncio.get_running_loop().time() + window_ms / 1000
        self._recovering_until = max(self._recovering_until, until)

    async def _restore(self) -> int:
        """Write back every call this process remembers (not older than the TTL); how many.

        Most calls are simply missing: one pipelined ``SET NX GET`` each puts
        them back. Where Redis holds a state already (another instance put
        its own back first, or a replica kept an older one), the two are
        merged by the usual compare-and-set.
        """
        now = time.monotonic()
        known = [
            (key, state, written)
            for key, (_, state, written) in list(self._known.items())
            if state is not None and now - written < self._ttl
        ]
        # Calls in progress first: they are what the recovery window is for;
        # an ended call only matters to a late repeat of its signals.
        known.sort(key=lambda item: item[1].end is not None)
        unmerged = 0
        for start in range(0, len(known), _RESTORE_BATCH):
            batch = known[start : start + _RESTORE_BATCH]
            raws = [encode_state(state) for _, state, _ in batch]
            async with command(), self._redis.pipeline(transaction=False) as pipe:
                for (key, _, written), raw in zip(batch, raws, strict=True):
                    # What was left of its life, not a new one: a call
                    # written back is not kept longer than it would have been.
                    pipe.set(key, raw, ex=max(1, int(self._ttl - (now - written))), nx=True, get=True)
                held = await pipe.execute()
            differing = []
            for (key, state, written), raw, old in zip(batch, raws, held, strict=True):
                if old is None:
                    self._remember(key, raw, state, written)
                elif old != raw:
                    differing.append(state)
            for first in range(0, len(differing), _MERGE_BATCH):
                results = await asyncio.gather(
                    *(
                        self._transact(s.user_id, s.call_key, functools.partial(restore, remembered=s))
                        for s in differing[first : first + _MERGE_BATCH]
                    ),
                    return_exceptions=True,
                )
                failures = [r for r in results if isinstance(r, BaseException)]
                # Redis gone again: the whole write-back stays owed for the
                # next connection. A call whose merge failed otherwise keeps
                # what Redis holds; the others are written back all the same.
                for failure in failures:
                    if isinstance(failure, (*commands.REDIS_TROUBLE, BrokerUnavailable)):
                        raise failure
                unmerged += len(failures)
                if failures:
                    log.warning("redis write-back: %d calls not merged: %s", len(failures), failures[0])
            await self._hold_on()
        return len(known) - unmerged

    async def _hold_on(self) -> None:
        """Writing back takes longer than the window: announce another, to every instance and here.

        The window is a guess at how long the slowest instance takes (a
        large memory of calls, a loaded machine, a slow link to Redis); the
        one still writing back knows better.
        """
        now = asyncio.get_running_loop().time()
        # Still writing back in the window's last third: another window.
        if self._recovering_until - now > _RECOVERY_SECONDS / 3:
            return
        self._recovering_until = max(self._recovering_until, now + _RECOVERY_SECONDS)
        async with command():
            await self._publish_control(f"recover {int(_RECOVERY_SECONDS * 1000)}")


def resized_only(before: dict[str, str], now: dict[str, str]) -> bool:
    """Whether a cluster's primaries (address -> run id) only grew or only shrank since the last check.

    Slots move to a primary added, or off one being removed, with their
    keys: nothing is lost, and no write-back and window are due. A primary
    at a known address with another run id restarted; one gone while
    another came is what a failover looks like (the replica promoted has
    its own address): both may have lost the last writes.
    """
    if not before or not now:
        return False
    if any(now.get(name, run_id) != run_id for name, run_id in before.items()):
        return False
    came, gone = now.keys() - before.keys(), before.keys() - now.keys()
    return not (came and gone)
