"""Failed-login throttling: a few guesses per login and per address, then a pause.

Sans-I/O: the caller passes the time. Per process; with several instances
an attacker gets the allowance once per instance, which still turns an
online guessing attack from thousands of tries a minute into a handful.
"""

from __future__ import annotations

from collections import deque


class FailureThrottle:
    def __init__(self, limit: int = 5, window: float = 300.0, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def retry_after(self, keys: list[str], now: float) -> float:
        """Seconds to wait before another try is allowed (0 if allowed now)."""
        wait = 0.0
        for key in keys:
            times = self._recent(key, now)
            if times is not None and len(times) >= self.limit:
                wait = max(wait, times[0] + self.window - now)
        return wait

    def failed(self, keys: list[str], now: float) -> None:
        if len(self._failures) >= self.max_keys:
            # Bounded memory under a spray of logins: forget the oldest.
            for stale in list(self._failures)[: self.max_keys // 10]:
                del self._failures[stale]
        for key in keys:
            self._failures.setdefault(key, deque()).append(now)

    def refund(self, key: str) -> None:
        """Take back the newest count of ``key`` (an attempt that succeeded)."""
        times = self._failures.get(key)
        if times:
            times.pop()
            if not times:
                del self._failures[key]

    def succeeded(self, keys: list[str]) -> None:
        for key in keys:
            self._failures.pop(key, None)
