"""Dials per user in a sliding window (pure: the clock is passed in).

Per process: with several instances behind a proxy a user may reach each
one's limit; the limit is a brake on a runaway page or script, the
allow-list is the guard against fraud.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class RateLimit:
    dials: int = 10
    seconds: float = 60.0


class DialRateLimiter:
    def __init__(self) -> None:
        self._recent: dict[str, deque[float]] = {}

    def retry_after(self, user_id: str, limit: RateLimit, now: float) -> int | None:
        """Whole seconds until the user may dial again, or None if they may now."""
        recent = self._recent.get(user_id)
        if recent is None:
            return None
        while recent and recent[0] <= now - limit.seconds:
            recent.popleft()
        if not recent:
            del self._recent[user_id]
            return None
        if len(recent) < limit.dials:
            return None
        return max(1, math.ceil(recent[-limit.dials] + limit.seconds - now))

    def record(self, user_id: str, now: float) -> None:
        self._recent.setdefault(user_id, deque()).append(now)
