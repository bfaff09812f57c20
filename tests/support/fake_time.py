"""A stand-in for the ``time`` module a broker reads, moved on by hand."""

from __future__ import annotations


class Clock:
    """``monotonic()`` and ``time()`` both read ``now``; a test adds to it."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now
