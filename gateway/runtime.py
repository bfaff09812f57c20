"""The running gateway's parts, shared by its routes and its sources."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from starlette.routing import BaseRoute

from gateway.broker.base import Broker
from gateway.config import Settings
from gateway.directory import Directory, DirectoryError
from gateway.metrics import Metrics
from gateway.throttle import FailureThrottle
from gateway.tokens import TokenSigner
from gateway.tracker import CallTracker

log = logging.getLogger("gateway")

ReadinessCheck = Callable[[], Awaitable[tuple[bool, str]]]
DirectoryListener = Callable[[Directory, Directory], Awaitable[None]]


class Component(Protocol):
    """Something with a life of its own: a SIP listener, a file watcher."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class Gateway:
    settings: Settings
    directory: Directory
    broker: Broker
    metrics: Metrics
    signer: TokenSigner
    tracker: CallTracker
    components: list[Component] = field(default_factory=list)
    readiness: dict[str, ReadinessCheck] = field(default_factory=dict)
    directory_listeners: list[DirectoryListener] = field(default_factory=list)
    routes: list[BaseRoute] = field(default_factory=list)
    login_throttle: FailureThrottle = field(default_factory=lambda: FailureThrottle(limit=10))
    address_throttle: FailureThrottle = field(default_factory=lambda: FailureThrottle(limit=50))

    async def swap_directory(self, new: Directory) -> None:
        old, self.directory = self.directory, new
        for user in old:
            if new.by_id(user.id) is None:
                self.broker.close_user_streams(user.id)
        for listener in self.directory_listeners:
            try:
                await listener(old, new)
            except Exception:
                log.exception("directory listener failed")


class DirectoryWatcher:
    """Reloads the users file when it changes (the CLI edits it in place).

    A broken file is reported and ignored: the users already loaded stay.
    """

    def __init__(self, gateway: Gateway, interval: float = 2.0) -> None:
        self._gateway = gateway
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self._stamp = self._read_stamp()

    def _read_stamp(self) -> tuple[int, int] | None:
        try:
            stat = os.stat(self._gateway.settings.users_file)
        except FileNotFoundError:
            return None
        return (stat.st_mtime_ns, stat.st_size)

    async def check(self) -> bool:
        stamp = self._read_stamp()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        settings = self._gateway.settings
        try:
            new = Directory.load(settings.users_file, settings.default_region)
        except DirectoryError as exc:
            log.error("users file not reloaded, keeping %d users: %s", len(self._gateway.directory), exc)
            return False
        await self._gateway.swap_directory(new)
        log.info("users file reloaded: %d users", len(new))
        return True

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.check()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="directory-watcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
