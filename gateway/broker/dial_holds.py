"""Ends held for a click-to-dial's reason, shared by every instance (docs/dialling.md#the-sip-route).

The instance that REFERred a user's phone to a number marks (user, number)
while it waits for the phone's final sipfrag, which says why the call to
the number ended. Any instance that receives a reasonless end of the user's
outbound call to that number holds it under the mark instead of delivering
it; the referrer, once it reported the sipfrag's outcome, removes the mark
and takes what was held, and delivers it. Both steps are atomic, so every
end falls either before the take (taken and delivered by the referrer,
after its reason) or after it (no mark: delivered at once, the reason is
already there).

The items are opaque text (the SIP source encodes its signals); a broker
stores and carries them. ``DialHolds`` is the interface and ``LocalDialHolds``
the embedded broker's; ``gateway.broker.redis.dial_holds`` is the shared one.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable

# At most this many ends held under one mark (a PBX repeating itself must not grow it).
MAX_HELD = 64
# The held ends outlive their mark this long: a referrer whose mark ran out
# (it waited longer than its mark's life) still takes them.
HELD_GRACE_SECONDS = 60.0


class DialHolds(abc.ABC):
    @abc.abstractmethod
    async def mark(self, user_id: str, number: str, token: str, seconds: float) -> None:
        """Hold the reasonless ends of the user's calls to ``number`` for ``seconds``, for ``token``."""

    @abc.abstractmethod
    async def hold(self, user_id: str, number: str, item: str) -> bool:
        """Keep ``item`` under the mark if there is one (True); False: no mark, deliver it now."""

    @abc.abstractmethod
    async def release(self, user_id: str, number: str, token: str) -> list[str]:
        """Remove the mark if it is ``token``'s and take what was held, in one step.

        Under a newer mark of another dial to the same number the items are
        left to that dial, and the answer is empty.
        """


class LocalDialHolds(DialHolds):
    """One process: dictionaries; atomic because nothing awaits mid-update."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._marks: dict[tuple[str, str], tuple[str, float]] = {}  # -> (token, expiry)
        self._held: dict[tuple[str, str], tuple[list[str], float]] = {}  # -> (items, expiry)

    def _sweep(self, now: float) -> None:
        for key in [k for k, (_, until) in self._marks.items() if until <= now]:
            del self._marks[key]
        for key in [k for k, (_, until) in self._held.items() if until <= now]:
            del self._held[key]

    async def mark(self, user_id: str, number: str, token: str, seconds: float) -> None:
        now = self._clock()
        self._sweep(now)
        self._marks[(user_id, number)] = (token, now + seconds)

    async def hold(self, user_id: str, number: str, item: str) -> bool:
        now = self._clock()
        key = (user_id, number)
        mark = self._marks.get(key)
        if mark is None or mark[1] <= now:
            return False
        items = self._held.get(key, ([], 0.0))[0]
        items = [*items, item][-MAX_HELD:]
        self._held[key] = (items, mark[1] + HELD_GRACE_SECONDS)
        return True

    async def release(self, user_id: str, number: str, token: str) -> list[str]:
        now = self._clock()
        self._sweep(now)
        key = (user_id, number)
        mark = self._marks.get(key)
        if mark is not None and mark[0] != token:
            return []
        self._marks.pop(key, None)
        return self._held.pop(key, ([], 0.0))[0]
