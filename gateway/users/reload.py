"""The users file, watched and reloaded on the fly (the CLI edits it in place)."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from gateway.tasks import cancel_and_wait
from gateway.users.directory import Directory, DirectoryError

log = logging.getLogger("gateway")


class DirectoryWatcher:
    """Reloads the users file when it changes (the CLI edits it in place).

    A broken file is reported and ignored: the users already loaded stay.
    """

    def __init__(
        self,
        path: Path,
        default_region: str,
        interval: float,
        current: Callable[[], Directory],
        swap: Callable[[Directory], Awaitable[None]],
    ) -> None:
        self._path = path
        self._region = default_region
        self._interval = interval
        self._current = current
        self._swap = swap
        self._task: asyncio.Task[None] | None = None
        self._stamp = self._read_stamp()

    def _read_stamp(self) -> tuple[int, int] | None:
        try:
            stat = os.stat(self._path)
        except FileNotFoundError:
            return None
        return (stat.st_mtime_ns, stat.st_size)

    async def check(self) -> bool:
        stamp = self._read_stamp()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            # Off the event loop: ten thousand users take half a second.
            new = await asyncio.to_thread(Directory.load, self._path, self._region)
        except DirectoryError as exc:
            log.error("users file not reloaded, keeping %d users: %s", len(self._current()), exc)
            return False
        await self._swap(new)
        log.info("users file reloaded: %d users", len(new))
        return True

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.check()
            except Exception:
                # Whatever went wrong this time, removals must keep working.
                log.exception("users file check failed; will try again")

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="directory-watcher")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
