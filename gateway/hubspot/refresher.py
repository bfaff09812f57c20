"""Refreshes each portal's access token ``refresh_margin_seconds`` before it expires.

HubSpot's guidelines ask apps to refresh by ``expires_in`` and not to take
a 401 as the sign; the 401 path (``gateway.hubspot.client``) is the
fallback. A refresh that fails transiently is tried again after
``RETRY_SECONDS``; one refused marks the portal broken (``Connections``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from gateway.hubspot.connections import Connections
from gateway.hubspot.errors import HubSpotError
from gateway.tasks import cancel_and_wait

log = logging.getLogger("gateway.hubspot")

RETRY_SECONDS = 30.0
# How often the store is reread, for what other instances did.
SYNC_SECONDS = 60.0


class Refresher:
    def __init__(self, connections: Connections, clock: Callable[[], float] = time.time) -> None:
        self._connections = connections
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self._retry_at: dict[int, float] = {}

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="hubspot-refresher")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    async def _until_changed(self, seconds: float | None) -> None:
        # asyncio.timeout, not wait_for: Python 3.11's wait_for swallows a
        # cancellation that arrives as the event is set, and stop() would hang.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._connections.changed.wait()

    async def _run(self) -> None:
        connections = self._connections
        synced = self._clock()
        while True:
            if self._clock() - synced >= SYNC_SECONDS:
                await connections.sync()
                synced = self._clock()
            connections.changed.clear()
            upcoming = connections.next_refresh(self._retry_at)
            until_sync = synced + SYNC_SECONDS - self._clock()
            if upcoming is None:
                await self._until_changed(until_sync)
                continue
            portal, at = upcoming
            wait = at - self._clock()
            if wait > 0:
                await self._until_changed(min(wait, until_sync))
                continue
            try:
                tokens = connections.current(portal)
                await connections.refresh(portal, tokens.access_token)
                self._retry_at.pop(portal, None)
            except HubSpotError as exc:
                # Broken portals leave next_refresh(); transient failures wait a little.
                log.warning("refreshing HubSpot portal %s failed (%s); retrying later", portal, exc.reason)
                self._retry_at[portal] = self._clock() + RETRY_SECONDS
