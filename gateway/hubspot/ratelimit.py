"""Staying under HubSpot's rate limits, and reading its 429 answers.

HubSpot limits an OAuth app to 100 requests every 10 seconds per
installed account (110 in the newest usage guidelines: 100 is under both),
and the CRM search endpoints to 4 requests per second per token, counted
in the general limit too (docs/hubspot.md#rate-limits). The pacer makes a
request wait for a free slot in both windows of its portal, so the gateway
itself does not cause the 429s; ``retry_after`` reads the headers of a 429
that still comes (another app of the same account, a lower limit).
``Pacer`` keeps the windows in the process; ``redis_pacer.RedisPacer`` keeps
them in Redis, shared by every instance and worker.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

GENERAL = (100, 10.0)  # requests, per seconds
SEARCH = (4, 1.0)
# A 429 that names no wait: HubSpot's burst window.
DEFAULT_RETRY_SECONDS = 10.0
# A request waits this long at most for its portal's slot; beyond it the
# caller hears ``Busy`` and comes back later. The outbox runs one job at a
# time and holds its lease meanwhile: waiting out a portal's 10 s window or
# its 429 hold would stall every other portal's calls behind it.
MAX_WAIT_SECONDS = 2.0


class Busy(Exception):
    """The portal has no slot within the wait allowed: try again in ``seconds``."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no request slot for {seconds:.1f} s")
        self.seconds = seconds


@dataclass
class SlidingWindow:
    """At most ``limit`` events in any ``seconds`` (pure: the caller gives the time)."""

    limit: int
    seconds: float
    _times: deque[float] = field(default_factory=deque)

    def delay(self, now: float) -> float:
        """How long until one more event fits; 0 when it fits now."""
        while self._times and self._times[0] <= now - self.seconds:
            self._times.popleft()
        if len(self._times) < self.limit:
            return 0.0
        return self._times[0] + self.seconds - now

    def record(self, now: float) -> None:
        self._times.append(now)


def _number(headers: Mapping[str, str], name: str) -> float | None:
    try:
        return float(headers[name])
    except (KeyError, ValueError):
        return None


def retry_after(headers: Mapping[str, str]) -> float:
    """Seconds to wait after a 429, from ``Retry-After`` or HubSpot's ``X-HubSpot-RateLimit-*``.

    ``headers`` is case-insensitive (httpx's ``Headers``) or lower-case.
    """
    given = _number(headers, "retry-after")
    if given is not None and given >= 0:
        return given
    if _number(headers, "x-hubspot-ratelimit-secondly-remaining") == 0:
        return 1.0
    if _number(headers, "x-hubspot-ratelimit-remaining") == 0:
        interval = _number(headers, "x-hubspot-ratelimit-interval-milliseconds")
        if interval is not None and interval > 0:
            return interval / 1000
    return DEFAULT_RETRY_SECONDS


class Pacing(Protocol):
    async def acquire(self, portal: int, search: bool = False, max_wait: float = MAX_WAIT_SECONDS) -> None:
        """Returns once one more request of ``portal`` (a search when ``search``) fits its windows.

        Raises ``Busy`` instead when that is more than ``max_wait`` seconds away.
        """

    async def hold(self, portal: int, seconds: float) -> None:
        """HubSpot answered 429: no request of this portal before ``seconds`` from now."""

    async def delay(self, portal: int, search: bool) -> float:
        """Seconds until one more request fits, without taking it."""

    async def close(self) -> None: ...


class Pacer:
    """Per-portal windows in this process; ``acquire`` waits for a slot (the only sleeping here is pacing)."""

    def __init__(
        self,
        general: tuple[int, float] = GENERAL,
        search: tuple[int, float] = SEARCH,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._general_limits = general
        self._search_limits = search
        self._clock = clock
        self._general: dict[int, SlidingWindow] = {}
        self._search: dict[int, SlidingWindow] = {}
        self._held_until: dict[int, float] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    def _windows(self, portal: int, search: bool) -> list[SlidingWindow]:
        general = self._general.setdefault(portal, SlidingWindow(*self._general_limits))
        if not search:
            return [general]
        return [general, self._search.setdefault(portal, SlidingWindow(*self._search_limits))]

    async def delay(self, portal: int, search: bool) -> float:
        return self._delay(portal, search)

    def _delay(self, portal: int, search: bool) -> float:
        now = self._clock()
        held = max(0.0, self._held_until.get(portal, 0.0) - now)
        return max([held, *(window.delay(now) for window in self._windows(portal, search))])

    async def acquire(self, portal: int, search: bool = False, max_wait: float = MAX_WAIT_SECONDS) -> None:
        # One waiter per portal at a time keeps the order fair and the windows exact.
        async with self._locks.setdefault(portal, asyncio.Lock()):
            # Pacing is waiting for time itself to pass: there is no event to await.
            while (wait := self._delay(portal, search)) > 0:
                if wait > max_wait:
                    raise Busy(wait)
                await asyncio.sleep(wait)
            now = self._clock()
            for window in self._windows(portal, search):
                window.record(now)

    async def hold(self, portal: int, seconds: float) -> None:
        self._held_until[portal] = max(self._held_until.get(portal, 0.0), self._clock() + seconds)

    async def close(self) -> None:
        pass
