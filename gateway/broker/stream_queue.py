"""One SSE stream's queue of a user's events: replay first, then live.

Sans-I/O apart from waiting: the broker offers events, the stream takes
them. Bounded, so a slow browser costs a fixed amount of memory and never
slows the publisher or anyone else.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from gateway.wire import Envelope, EventId, parse_event_id


class StreamQueue:
    """One stream's view of a user's events: replay first, then live.

    Live events wait in a bounded buffer. When a consumer is too slow to
    keep it from filling, the subscription is closed instead of growing or
    slowing the publisher: the client reconnects with Last-Event-ID and
    catches up from history.
    """

    __slots__ = (
        "_backlog",
        "_last",
        "_limit",
        "_live",
        "_waiter",
        "closed",
        "gap",
        "head_id",
        "on_close",
        "reason",
        "user_id",
    )

    def __init__(self, user_id: str, limit: int) -> None:
        self.user_id = user_id
        self._backlog: deque[Envelope] = deque()
        self._live: deque[Envelope] = deque()
        self._limit = limit
        self._waiter: asyncio.Future[None] | None = None
        self._last: EventId | None = None
        self.closed = False
        self.reason = ""
        self.gap = False
        self.head_id: str | None = None
        self.on_close: Callable[[StreamQueue], None] | None = None

    def resume_after(self, last: EventId | None, replay: list[Envelope], gap: bool) -> None:
        # After a gap the client's id tells nothing about what it has (it
        # may even lie ahead of ours after a failover): deliver everything.
        self._last = None if gap else last
        self._backlog.extend(replay)
        self.gap = gap
        self._wake()

    def offer(self, envelope: Envelope) -> None:
        """Called by the broker for each live event; never blocks."""
        if self.closed:
            return
        if len(self._live) >= self._limit:
            self.close("overflow")
            return
        self._live.append(envelope)
        self._wake()

    def close(self, reason: str) -> None:
        if not self.closed:
            self.closed = True
            self.reason = reason
            self._live.clear()
            self._wake()
            if self.on_close is not None:
                self.on_close(self)

    def _wake(self) -> None:
        if self._waiter is not None:
            _resolve(self._waiter)

    def _pop(self) -> Envelope | None:
        while self._backlog or self._live:
            envelope = (self._backlog or self._live).popleft()
            key = parse_event_id(envelope.id)
            # Live events that arrived while history was being read are also
            # in the replay: ids are ordered, so anything not newer is a copy.
            if key is not None and self._last is not None and key <= self._last:
                continue
            self._last = key
            return envelope
        return None

    def pending(self) -> list[Envelope]:
        """Everything ready now, without waiting (to write in one go)."""
        out: list[Envelope] = []
        while (envelope := self._pop()) is not None:
            out.append(envelope)
        return out

    async def wait(self, timeout: float) -> list[Envelope]:
        """Events ready now, or after up to ``timeout`` seconds; [] on timeout or close."""
        ready = self.pending()
        if ready or self.closed:
            return ready
        # A timer that resolves the same future, rather than wait_for: at
        # thousands of idle streams each heartbeat would otherwise cost an
        # extra future and a raised TimeoutError.
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(timeout, _resolve, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None
        return self.pending()


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
