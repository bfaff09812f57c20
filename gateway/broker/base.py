"""The broker interface and the parts both brokers share.

A broker does two jobs: it advances a call's state atomically (so that two
instances receiving the same signal emit one event), and it carries the
events it emitted to every stream of the user, on any instance, keeping a
bounded per-user history for replay.
"""

from __future__ import annotations

import abc
import asyncio
import json
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.model import CallState, SdkEvent

log = logging.getLogger("gateway.broker")

Step = Callable[[CallState | None], tuple[CallState | None, list[SdkEvent]]]


class BrokerUnavailable(RuntimeError):
    """The broker cannot be reached; the caller should answer 503."""


class Conflict(RuntimeError):
    """The state kept changing under us; too many retries."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """One event as it travels: its stream id and its JSON text.

    The JSON is made once when the event is emitted, never per stream.
    """

    id: str
    data: str


def parse_event_id(raw: str | None) -> tuple[int, int] | None:
    """Event ids are ``<epoch>-<seq>`` (Redis stream ids have that shape too)."""
    if not raw:
        return None
    head, sep, tail = raw.strip().partition("-")
    if not sep or not head.isdigit() or not tail.isdigit():
        return None
    return int(head), int(tail)


def encode_event(state: CallState, event: SdkEvent) -> str:
    body: dict[str, Any] = {
        "type": event.type,
        "externalCallId": state.call_key,
        "payload": event.payload,
        "call": state.snapshot(),
    }
    return json.dumps(body, separators=(",", ":"))


class Subscription:
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
        self._last: tuple[int, int] | None = None
        self.closed = False
        self.reason = ""
        self.gap = False
        self.head_id: str | None = None
        self.on_close: Callable[[Subscription], None] | None = None

    def resume_after(self, last: tuple[int, int] | None, replay: list[Envelope], gap: bool) -> None:
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


class Broker(abc.ABC):
    def __init__(self, history_size: int, stream_buffer: int) -> None:
        self.history_size = history_size
        self.stream_buffer = stream_buffer
        self._local: dict[str, set[Subscription]] = {}

    # -- lifecycle ---------------------------------------------------------
    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self.close_streams("shutdown")
        self._local.clear()

    @abc.abstractmethod
    async def ping(self) -> bool: ...

    # -- state -------------------------------------------------------------
    @abc.abstractmethod
    async def transact(self, user_id: str, call_key: str, step: Step) -> list[Envelope]:
        """Apply ``step`` to the call's state atomically; publish what it emits."""

    @abc.abstractmethod
    async def get_call(self, user_id: str, call_key: str) -> CallState | None: ...

    # -- streams -----------------------------------------------------------
    async def subscribe(self, user_id: str, last_event_id: str | None) -> Subscription:
        sub = Subscription(user_id, self.stream_buffer)
        subs = self._local.setdefault(user_id, set())
        subs.add(sub)
        try:
            await self._listen(user_id, first=len(subs) == 1)
            last = parse_event_id(last_event_id)
            # A fresh stream starts with what happens from now on, and is
            # told where "now" is, so that if it drops before its first event
            # it can still resume from there; a resumed one first gets what
            # it missed.
            if last is None:
                head = await self._head(user_id)
                sub.head_id = f"{head[0]}-{head[1]}"
                sub.resume_after(head, [], gap=False)
            else:
                replay, gap = await self._replay(user_id, last)
                sub.resume_after(last, replay, gap)
        except BaseException:
            self.unsubscribe(sub)
            raise
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        sub.close(sub.reason or "closed")
        subs = self._local.get(sub.user_id)
        if subs is None:
            return
        subs.discard(sub)
        if not subs:
            del self._local[sub.user_id]
            self._unlisten(sub.user_id)

    def close_user_streams(self, user_id: str) -> None:
        for sub in tuple(self._local.get(user_id, ())):
            sub.close("user-removed")

    def close_streams(self, reason: str) -> None:
        """End every stream here, e.g. before a shutdown (clients resume elsewhere)."""
        for subs in tuple(self._local.values()):
            for sub in tuple(subs):
                sub.close(reason)

    def stream_count(self) -> int:
        return sum(len(subs) for subs in self._local.values())

    def _deliver(self, user_id: str, envelope: Envelope) -> None:
        for sub in tuple(self._local.get(user_id, ())):
            sub.offer(envelope)

    async def _listen(self, user_id: str, first: bool) -> None:
        """Make sure live events for the user reach this process."""
        return None

    def _unlisten(self, user_id: str) -> None:
        return None

    @abc.abstractmethod
    async def _head(self, user_id: str) -> tuple[int, int]:
        """An id to resume from that stands for "now": every later event is newer."""

    @abc.abstractmethod
    async def _replay(self, user_id: str, after: tuple[int, int]) -> tuple[list[Envelope], bool]:
        """History after ``after``, and whether some of it was already dropped."""
