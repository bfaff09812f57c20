"""Keeps the cyclic garbage collector's pauses short while many streams are open.

A full CPython collection walks every object that can hold references. At
10,000 open streams that is over a million objects and a pause of half a
second, which every stream's next event waits out; and while streams and
call state grow, CPython runs one every few seconds. The pacer moves what
is already alive out of the collector's sight (``gc.freeze()``) every
``freeze_seconds``, so that automatic collections only walk what is recent.
Reference counting still frees frozen objects as usual; only cycles among
them wait for the pacer's full collection every ``full_seconds``, which
thaws everything first.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time

from gateway.tasks import cancel_and_wait

log = logging.getLogger("gateway.gc")


class CollectorPacer:
    """A gateway component; for the serving process, not for a library user's process."""

    def __init__(self, freeze_seconds: float, full_seconds: float) -> None:
        self._freeze_seconds = freeze_seconds
        self._full_seconds = full_seconds
        self._task: asyncio.Task[None] | None = None
        self.rounds = asyncio.Event()  # set after each round, for whoever watches the pacer

    async def start(self) -> None:
        gc.freeze()  # what start-up made (modules, settings, users) lives as long as the process
        self._task = asyncio.create_task(self._run(), name="gc-pacer")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
        gc.unfreeze()

    def full_collection(self) -> int:
        """Thaw everything and collect it all once; returns the unreachable objects found."""
        started = time.perf_counter()
        gc.unfreeze()
        found = gc.collect()
        gc.freeze()
        took_ms = (time.perf_counter() - started) * 1000
        log.info("full collection: %d unreachable objects, %.0f ms", found, took_ms)
        return found

    async def _run(self) -> None:
        next_full = time.monotonic() + self._full_seconds
        while True:
            await asyncio.sleep(self._freeze_seconds)
            if time.monotonic() >= next_full:
                self.full_collection()
                next_full = time.monotonic() + self._full_seconds
            else:
                gc.freeze()
            self.rounds.set()
