"""Failed-login throttling: a few guesses per login and per address, then a pause.

The rule (docs/operations.md#failed-logins), over a sliding window:

- one address may fail ``per_pair`` times on one login,
- and ``per_address`` times over all logins (a proxy puts many users
  behind one address, hence more);
- one login may fail ``per_login`` times over all addresses, after which
  it is closed to addresses it never signed in from (in ``own_days``);
  from its own addresses only the two rules above count, so a stranger
  guessing elsewhere never locks the user out.

A try counts as a failure before the password is checked (concurrent
guesses cannot all slip past the limit); a success takes its counts back.

``LoginThrottle`` is the interface; ``LocalLoginThrottle`` counts in this
process (one instance, or no Redis); the Redis broker's counts are shared
by every instance (``gateway.broker.shared_logins``). ``FailureThrottle``
is the pure counting, the clock passed in.
"""

from __future__ import annotations

import abc
import hashlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


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


@dataclass(frozen=True)
class LoginLimits:
    per_pair: int = 10
    per_address: int = 50
    per_login: int = 100
    window_seconds: float = 300.0
    # How long an address a login signed in from stays the login's own.
    own_days: float = 30.0


def key_of(text: str) -> str:
    """A login or an address as a short fixed key: no user text in key names or memory keys."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class LoginThrottle(abc.ABC):
    def __init__(self, limits: LoginLimits) -> None:
        self.limits = limits

    @abc.abstractmethod
    async def admit(self, login: str, address: str) -> float:
        """0: the try may go ahead, counted as a failure; else the seconds to wait (nothing counted)."""

    @abc.abstractmethod
    async def succeeded(self, login: str, address: str) -> None:
        """The admitted try was right: take its counts back, and the address is the login's own."""


class LocalLoginThrottle(LoginThrottle):
    """The rule counted in this process."""

    def __init__(
        self, limits: LoginLimits | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(limits or LoginLimits())
        window = self.limits.window_seconds
        self._clock = clock
        self._pairs = FailureThrottle(self.limits.per_pair, window)
        self._addresses = FailureThrottle(self.limits.per_address, window)
        self._logins = FailureThrottle(self.limits.per_login, window)
        # login key -> {address key: last sign-in}; bounded like the counts.
        self._own: dict[str, dict[str, float]] = {}

    def _is_own(self, login: str, address: str, now: float) -> bool:
        seen = self._own.get(login, {}).get(address)
        return seen is not None and now - seen < self.limits.own_days * 86400

    async def admit(self, login: str, address: str) -> float:
        now = self._clock()
        who, where = key_of(login), key_of(address)
        pair = f"{who}:{where}"
        wait = max(self._pairs.retry_after([pair], now), self._addresses.retry_after([where], now))
        if not self._is_own(who, where, now):
            wait = max(wait, self._logins.retry_after([who], now))
        if wait > 0:
            return wait
        self._pairs.failed([pair], now)
        self._addresses.failed([where], now)
        self._logins.failed([who], now)
        return 0.0

    async def succeeded(self, login: str, address: str) -> None:
        who, where = key_of(login), key_of(address)
        self._pairs.succeeded([f"{who}:{where}"])
        self._addresses.refund(where)
        self._logins.refund(who)
        own = self._own.setdefault(who, {})
        own.pop(where, None)
        own[where] = self._clock()
        if len(own) > 100:
            del own[next(iter(own))]
        if len(self._own) > self._pairs.max_keys:
            del self._own[next(iter(self._own))]
