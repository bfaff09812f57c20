"""The worker's lease renewal ends with its job, on the real Redis store.

Python 3.11's ``asyncio.wait_for`` (under redis-py's writes) swallows a
cancellation that lands in the loop turn its work completes; a renewal in
that turn when the job ends must still stop, or the worker waits for it
forever and the job stays leased, renewed, never settled.
"""

from __future__ import annotations

import asyncio

from gateway.ops.metrics import Metrics
from gateway.outbox.jobs import Job
from gateway.outbox.redis import RedisStore
from gateway.outbox.worker import Outbox
from tests.support.servers import RedisServer

LEASE = 0.4  # renewed every 0.1 s
# Loop turns a job may end in after its renewal started: more than a write to Redis takes.
TURNS = 12


class RenewalsSeen(RedisStore):
    """The real store, telling when a renewal starts."""

    def __init__(self, url: str) -> None:
        super().__init__(url, "test")
        self.renewing = asyncio.Event()

    async def renew(self, job: Job, lease_end: float) -> bool:
        self.renewing.set()
        return await super().renew(job, lease_end)


async def test_a_job_that_ends_while_its_lease_is_being_renewed_is_settled(redis_server: RedisServer) -> None:
    store = RenewalsSeen(redis_server.url)
    turns = 0

    async def handler(job: Job) -> None:
        # Ends a given number of loop turns after a renewal started: one of
        # them is the turn in which the renewal's write to Redis completes.
        store.renewing.clear()
        await store.renewing.wait()
        for _ in range(turns):
            await asyncio.sleep(0)

    box = Outbox(store, {"log": handler}, Metrics(), lease_seconds=LEASE)
    try:
        for turns in range(TURNS):
            await box.enqueue("log", f"log:u1:c{turns}", {})
            try:
                async with asyncio.timeout(5):
                    assert await box.run_once()
            except TimeoutError:
                raise AssertionError(f"a job ended {turns} turns after a renewal is never settled") from None
            assert (await store.stats()).depth == 0
    finally:
        await store.close()
