"""The outbox worker: runs due jobs, settles each by its outcome, counts it all in /metrics.

The clock is a variable the tests move; nothing sleeps.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.hubspot.errors import RateLimited, Rejected, Transient, Unauthorized
from gateway.ops.metrics import Metrics
from gateway.outbox.jobs import BACKOFF_BASE, PARK_SECONDS, Job
from gateway.outbox.sqlite import SqliteStore
from gateway.outbox.store import JobStore
from gateway.outbox.worker import Outbox
from tests.outbox.conftest import StoreFactory


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class Handler:
    """Fails with the errors it is given, one per attempt, then succeeds."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.ran: list[Job] = []

    async def __call__(self, job: Job) -> None:
        self.ran.append(job)
        if self.errors:
            raise self.errors.pop(0)


def outbox(store: JobStore, handler: Handler, clock: Clock, metrics: Metrics | None = None) -> Outbox:
    # random() == 1.0: the backoff's upper bound, so the expected times are exact.
    return Outbox(store, {"log": handler}, metrics or Metrics(), clock=clock, random=lambda: 1.0)


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(metrics.render().decode()):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    raise AssertionError(f"no sample {name} {labels}")


async def test_a_due_job_runs_once_and_is_done(store: JobStore) -> None:
    clock, handler = Clock(), Handler()
    box = outbox(store, handler, clock)
    await box.enqueue("log", "log:u1:c1", {"call": "c1"})
    assert await box.run_once() is True
    assert await box.run_once() is False
    assert [j.payload for j in handler.ran] == [{"call": "c1"}]


async def test_a_delayed_job_waits_for_its_time(store: JobStore) -> None:
    clock, handler = Clock(), Handler()
    box = outbox(store, handler, clock)
    await box.enqueue("log", "log:u1:c1", {}, delay=30)
    clock.now += 29
    assert await box.run_once() is False
    clock.now += 1
    assert await box.run_once() is True


async def test_a_transient_failure_is_retried_after_the_backoff(store: JobStore) -> None:
    clock, handler = Clock(), Handler(Transient("503"), Transient("timeout"))
    box = outbox(store, handler, clock)
    await box.enqueue("log", "k", {})
    await box.run_once()
    clock.now += BACKOFF_BASE - 1
    assert await box.run_once() is False
    clock.now += 1
    await box.run_once()  # the second failure: twice as long now
    clock.now += 2 * BACKOFF_BASE - 1
    assert await box.run_once() is False
    clock.now += 1
    assert await box.run_once() is True
    assert len(handler.ran) == 3 and (await store.stats()).depth == 0


async def test_a_rate_limited_job_waits_the_retry_after(store: JobStore) -> None:
    clock, handler = Clock(), Handler(RateLimited("429", 3.0))
    box = outbox(store, handler, clock)
    await box.enqueue("log", "k", {})
    await box.run_once()
    clock.now += 2.9
    assert await box.run_once() is False
    clock.now += 0.1
    assert await box.run_once() is True
    assert len(handler.ran) == 2


async def test_a_rejected_job_goes_to_the_dead_letters_with_its_reason(store: JobStore) -> None:
    clock, handler = Clock(), Handler(Rejected("400 property hs_call_status: bad value"))
    box = outbox(store, handler, clock)
    await box.enqueue("log", "k", {"call": "c1"})
    await box.run_once()
    clock.now += 86400
    assert await box.run_once() is False
    [dead] = await store.dead_letters()
    assert dead.reason == "rejected: 400 property hs_call_status: bad value"


async def test_an_unauthorized_job_is_parked_and_run_when_the_portal_is_back(store: JobStore) -> None:
    clock, handler = Clock(), Handler(Unauthorized("401"), Unauthorized("401"), Unauthorized("401"))
    box = outbox(store, handler, clock)
    await box.enqueue("log", "k", {})
    for _ in range(3):
        await box.run_once()
        clock.now += PARK_SECONDS
    assert await box.run_once() is True
    assert len(handler.ran) == 4 and (await store.dead_letters()) == []


async def test_a_restart_loses_no_job(open_store: StoreFactory) -> None:
    clock = Clock()
    before = outbox(open_store(), Handler(), clock)
    await before.enqueue("log", "k", {"call": "c1"})
    await before.stop()
    handler = Handler()
    after = outbox(open_store(), handler, clock)
    assert await after.run_once() is True
    assert [j.payload for j in handler.ran] == [{"call": "c1"}]


async def test_a_job_taken_by_a_worker_that_died_is_run_by_another_after_the_lease(
    open_store: StoreFactory,
) -> None:
    clock = Clock()

    class Dies(Handler):
        async def __call__(self, job: Job) -> None:
            raise asyncio.CancelledError  # the process stops mid-job

    dying = outbox(open_store(), Dies(), clock)
    await dying.enqueue("log", "k", {})
    with pytest.raises(asyncio.CancelledError):
        await dying.run_once()
    handler = Handler()
    other = outbox(open_store(), handler, clock)
    assert await other.run_once() is False
    clock.now += dying.lease_seconds
    assert await other.run_once() is True
    assert len(handler.ran) == 1


async def test_metrics_show_the_depth_the_oldest_age_the_failures_and_the_done(store: JobStore) -> None:
    clock, metrics = Clock(), Metrics()
    box = Outbox(
        store,
        {"log": Handler(Transient("503")), "update": Handler(Rejected("404"))},
        metrics,
        clock=clock,
        random=lambda: 1.0,
    )
    await box.enqueue("log", "a", {})
    await box.enqueue("update", "b", {})
    await box.enqueue("log", "c", {}, delay=3600)
    await box.run_once()
    await box.run_once()
    clock.now += BACKOFF_BASE
    await box.run_once()
    clock.now += 5
    await box.refresh_stats()
    assert sample(metrics, "gateway_outbox_depth") == 1
    assert sample(metrics, "gateway_outbox_oldest_age_seconds") == BACKOFF_BASE + 5
    assert sample(metrics, "gateway_outbox_dead") == 1
    assert sample(metrics, "gateway_outbox_failures_total", reason="transient") == 1
    assert sample(metrics, "gateway_outbox_failures_total", reason="rejected") == 1
    assert sample(metrics, "gateway_outbox_jobs_done_total", kind="log") == 1


async def test_a_running_outbox_runs_a_job_as_soon_as_it_is_enqueued(tmp_path: Path) -> None:
    done = asyncio.Event()

    async def handler(job: Job) -> None:
        done.set()

    # A poll far longer than the test: only the wake-up can run the job in time.
    box = Outbox(SqliteStore(tmp_path / "outbox.sqlite3"), {"log": handler}, Metrics(), poll_seconds=3600)
    await box.start()
    try:
        await box.enqueue("log", "k", {})
        async with asyncio.timeout(5):
            await done.wait()
    finally:
        await box.stop()
