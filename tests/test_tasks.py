"""Stopping a background task for sure (gateway/tasks.py)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from gateway.tasks import cancel_and_wait


async def test_a_task_that_lost_its_cancellation_is_cancelled_again_until_it_ends() -> None:
    lost: list[int] = []

    async def loop() -> None:
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if lost:
                    raise
                lost.append(1)  # as wait_for drops it: the loop goes on

    task = asyncio.create_task(loop())
    await asyncio.sleep(0)
    async with asyncio.timeout(5):
        await cancel_and_wait(task, retry_seconds=0.01)
    assert task.cancelled() and lost == [1]


async def test_what_the_task_ended_with_is_raised() -> None:
    async def fails() -> None:
        raise LookupError("gone")

    task = asyncio.create_task(fails())
    await asyncio.sleep(0)
    with pytest.raises(LookupError, match="gone"):
        await cancel_and_wait(task)


async def test_the_callers_own_cancellation_goes_through() -> None:
    released = asyncio.Event()

    async def stubborn() -> None:
        while not released.is_set():
            with contextlib.suppress(asyncio.CancelledError):  # ends only once released
                await asyncio.sleep(3600)

    task = asyncio.create_task(stubborn())
    stopper = asyncio.create_task(cancel_and_wait(task, retry_seconds=0.01))
    await asyncio.sleep(0.05)
    stopper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopper
    assert not task.done()
    released.set()
    await cancel_and_wait(task)
