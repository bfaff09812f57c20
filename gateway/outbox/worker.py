"""The component that runs the outbox's jobs: takes a due job, runs its handler, settles it.

Every instance runs one; the store decides which of them gets a job. The
clock, the dice and the token maker are parameters, so tests move time
instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random as _random
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping

from prometheus_client import Counter

from gateway.ops.metrics import Metrics
from gateway.outbox.jobs import PARKED_REASONS, Bury, Job, after_failure
from gateway.outbox.store import JobStore, Stats, StoreUnavailable
from gateway.tasks import cancel_and_wait

log = logging.getLogger("gateway.outbox")

Handler = Callable[[Job], Awaitable[None]]

# Longer than any job usually takes (a few HubSpot requests, each with a
# timeout), and renewed while it runs (every RENEWALS_PER_LEASE-th of it), so
# a slow HubSpot does not hand the job to a second worker. Only a worker that
# cannot renew for a whole lease (cut off from the store, frozen) leaves a
# running job to another, which the jobs are written to survive as far as
# HubSpot allows (docs/call-logging.md#the-outbox).
LEASE_SECONDS = 120.0
RENEWALS_PER_LEASE = 4
# How often an idle worker looks for jobs that came due (or that another
# instance enqueued); a job enqueued here wakes it at once.
POLL_SECONDS = 1.0


class Outbox:
    def __init__(
        self,
        store: JobStore,
        handlers: Mapping[str, Handler],
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.time,
        random: Callable[[], float] = _random.random,
        lease_seconds: float = LEASE_SECONDS,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.store = store
        self.handlers = dict(handlers)
        self.clock = clock
        self.random = random
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stats = Stats(0, None, 0)
        self.failures = Counter(
            "gateway_outbox_failures_total",
            "Outbox job attempts that failed, by reason",
            ["reason"],
            registry=metrics.registry,
        )
        self.done = Counter(
            "gateway_outbox_jobs_done_total", "Outbox jobs done, by kind", ["kind"], registry=metrics.registry
        )
        metrics.gauge(
            "gateway_outbox_depth", "Outbox jobs waiting or running", [], lambda: {(): self._stats.depth}
        )
        metrics.gauge(
            "gateway_outbox_oldest_age_seconds",
            "Age of the oldest outbox job waiting or running (0 when none)",
            [],
            lambda: {(): self._oldest_age()},
        )
        metrics.gauge(
            "gateway_outbox_dead", "Outbox jobs given up (dead letters)", [], lambda: {(): self._stats.dead}
        )

    def _oldest_age(self) -> float:
        oldest = self._stats.oldest_created_at
        return 0.0 if oldest is None else max(0.0, self.clock() - oldest)

    async def enqueue(self, kind: str, key: str, payload: Mapping[str, object], delay: float = 0.0) -> bool:
        """Keep a job to run in ``delay`` seconds; False if a job with this key exists (or was done)."""
        if kind not in self.handlers:
            raise ValueError(f"no handler for outbox jobs of kind {kind!r}")
        now = self.clock()
        kept = await self.store.put(Job(key, kind, dict(payload), now, now + delay))
        if kept:
            self._wake.set()
        return kept

    async def run_once(self) -> bool:
        """Take one due job and run it; False when none is due."""
        job = await self.store.take(self.clock(), self.lease_seconds, secrets.token_hex(12))
        if job is None:
            return False
        handler = self.handlers.get(job.kind)
        try:
            if handler is None:
                raise LookupError(f"no handler for outbox jobs of kind {job.kind!r}")
            await self._run_leased(handler, job)
        except Exception as exc:  # each failure is sorted by after_failure
            await self._failed(job, exc)
        else:
            if await self.store.complete(job, self.clock()):
                self.done.labels(job.kind).inc()
            else:
                log.warning("outbox job %s finished after its lease ended; another worker has it", job.key)
        return True

    async def _run_leased(self, handler: Handler, job: Job) -> None:
        """The handler, with the job's lease renewed until it returns."""
        ended = asyncio.Event()
        renewing = asyncio.create_task(self._renew(job, ended), name=f"outbox lease {job.key}")
        try:
            await handler(job)
        finally:
            # Told, not only cancelled: a cancellation landing in the loop turn
            # a renewal's write to Redis completes is swallowed (Python 3.11's
            # wait_for in redis-py), and the renewals would go on forever, the
            # job never settled and this worker waiting below for good.
            ended.set()
            renewing.cancel()
            # wait, not await: a cancellation of this task itself still propagates.
            await asyncio.wait([renewing])

    async def _renew(self, job: Job, ended: asyncio.Event) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.lease_seconds / RENEWALS_PER_LEASE):
                    await ended.wait()
            if ended.is_set():
                return
            try:
                kept = await self.store.renew(job, self.clock() + self.lease_seconds)
            except StoreUnavailable as exc:
                # The lease still runs; the next renewal may reach the store.
                log.warning("outbox job %s: its lease could not be renewed (%s)", job.key, exc)
                continue
            if not kept:
                log.warning(
                    "outbox job %s still running after its lease was lost; another worker may run it", job.key
                )
                return

    async def _failed(self, job: Job, exc: Exception) -> None:
        outcome = after_failure(exc, job.attempts + 1, self.clock(), self.random)
        if isinstance(outcome, Bury):
            self.failures.labels("rejected").inc()
            log.warning("outbox job %s given up: %s", job.key, outcome.reason)
            await self.store.bury(job, outcome.reason, self.clock())
            return
        self.failures.labels(outcome.reason).inc()
        if outcome.reason == "error":
            log.warning("outbox job %s failed unexpectedly; retried later", job.key, exc_info=exc)
        else:
            wait = outcome.at - self.clock()
            what = "parked (portal not connected)" if outcome.parked else "retried"
            log.info("outbox job %s %s in %.0f s: %s", job.key, what, wait, outcome.reason)
        await self.store.reschedule(job, outcome.at, outcome.reason)

    async def wake_parked(self) -> int:
        """A portal was connected: the jobs parked for want of one run now, not in minutes.

        Every parked job is woken (the store does not know portals); those of
        other portals still unconnected fail once more and park again.
        """
        woken = await self.store.wake(PARKED_REASONS, self.clock())
        if woken:
            log.info("outbox: %d parked job(s) due now that a HubSpot portal is connected", woken)
            self._wake.set()
        return woken

    async def refresh_stats(self) -> Stats:
        self._stats = await self.store.stats()
        return self._stats

    # -- the component ------------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.create_task(self._run_forever(), name="outbox")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
        await self.store.close()

    async def _run_forever(self) -> None:
        while True:
            # Cleared before looking, so an enqueue while we look wakes the next wait.
            self._wake.clear()
            try:
                while await self.run_once():
                    pass
                await self.refresh_stats()
            except StoreUnavailable as exc:
                log.warning("outbox store unavailable, trying again: %s", exc)
            # asyncio.timeout, not wait_for: Python 3.11's wait_for drops a
            # cancellation (stop()) that comes in the turn the wake-up does.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_seconds):
                    await self._wake.wait()
