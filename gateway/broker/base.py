"""The broker interface and the parts both brokers share.

A broker does two jobs: it advances a call's state atomically (so that two
instances receiving the same signal emit one event), and it carries the
events it emitted to every stream of the user, on any instance, keeping a
bounded per-user history for replay.
"""

from __future__ import annotations

import abc
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from gateway.auth.throttle import LocalLoginThrottle, LoginThrottle
from gateway.broker.dial_holds import DialHolds, LocalDialHolds
from gateway.broker.stream_queue import StreamQueue
from gateway.model import CallState, SdkEvent
from gateway.wire import Envelope, EventId, format_event_id, parse_event_id

log = logging.getLogger("gateway.broker")

# Wrap-ups kept per user (keep_wrap_up): a user has a call or two waiting for
# one at a time; twenty leaves room for a busy day without letting a page
# fill the broker.
WRAP_UPS_PER_USER = 20

Step = Callable[[CallState | None], tuple[CallState | None, list[SdkEvent]]]


class BrokerUnavailable(RuntimeError):
    """The broker cannot be reached; the web layer answers 503 (the sender retries)."""


class Conflict(RuntimeError):
    """The state kept changing under us; too many retries."""


# -- dialling: joining what telephony reports to a dialled call (gateway.dial) --
@dataclass(frozen=True)
class Join:
    """How a signal's call may turn out to be a dialled call (docs/dialling.md#joining).

    Only a call with no state of its own joins: it is redirected when its key
    was bound to a dialled call, when the source names the dialled call
    (``dial_key``, an exact correlation), or when it claims the user's
    pending dial to ``remote``. ``rekey`` gives the step to apply to the
    dialled call instead.
    """

    rekey: Callable[[str], Step]
    remote: str | None = None  # an outbound call's other party (E.164)
    dial_key: str | None = None


# -- rate windows (gateway.dial's per-user dial limit) -----------------------
class SlidingWindows:
    """Uses per key in a sliding window (pure: the clock is passed in); the memory broker's.

    A use leaves its window exactly ``seconds`` after it was counted.
    """

    def __init__(self) -> None:
        self._uses: dict[str, deque[float]] = {}

    def take(self, key: str, limit: int, seconds: float, now: float) -> float | None:
        """Count a use if fewer than ``limit`` are in the window: None; else the wait, counting nothing."""
        uses = self._uses.setdefault(key, deque())
        while uses and uses[0] <= now - seconds:
            uses.popleft()
        if len(uses) >= limit:
            return uses[-limit] + seconds - now
        uses.append(now)
        return None

    def sweep(self, now: float, seconds: float) -> None:
        """Forget keys with no use in the last ``seconds`` (the longest window in use)."""
        for key in [k for k, uses in self._uses.items() if not uses or uses[-1] <= now - seconds]:
            del self._uses[key]


class Broker(abc.ABC):
    def __init__(self, history_size: int, stream_buffer: int, streams_per_user: int = 16) -> None:
        self.history_size = history_size
        self.stream_buffer = stream_buffer
        self.streams_per_user = streams_per_user
        # Per user, in the order the streams opened (a dict keeps it).
        self._local: dict[str, dict[StreamQueue, None]] = {}

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
    async def transact(
        self, user_id: str, call_key: str, step: Step, join: Join | None = None
    ) -> list[Envelope]:
        """Apply ``step`` to the call's state atomically; publish what it emits.

        With ``join``, a call that has no state of its own may be redirected
        to the dialled call it is (see ``Join``), in the same atomic step.
        """

    @abc.abstractmethod
    async def get_call(self, user_id: str, call_key: str) -> CallState | None: ...

    # -- one-use credentials -------------------------------------------------
    @abc.abstractmethod
    async def burn(self, token_id: str, ttl_seconds: int) -> bool:
        """Mark a credential used; True only the first time, whichever instance asks.

        ``ttl_seconds`` is what is left of the credential's life: it is
        remembered that long, after which it is refused as expired anyway.
        """

    @abc.abstractmethod
    async def unburn(self, token_id: str) -> None:
        """Forget that ``token_id`` was used: what its first use was for did not happen."""

    # -- dialling (gateway.dial): pending dials, bound calls, request keys ---
    @abc.abstractmethod
    async def expect_dial(self, user_id: str, remote: str, dial_key: str, seconds: float) -> None:
        """For ``seconds``, the user's first new outbound call to ``remote`` joins ``dial_key``."""

    @abc.abstractmethod
    async def forget_dial(self, user_id: str, remote: str, dial_key: str) -> bool:
        """Withdraw the pending dial if still unclaimed; whether it was."""

    @abc.abstractmethod
    async def bind_call(self, user_id: str, call_key: str, dial_key: str) -> None:
        """From now on, signals of ``call_key`` (a source's own key) advance ``dial_key``."""

    @abc.abstractmethod
    async def claim_request(self, user_id: str, request_key: str, value: str, seconds: float) -> str | None:
        """Keep ``value`` under the request key unless one is held: None if kept, else the one held."""

    @abc.abstractmethod
    async def settle_request(self, user_id: str, request_key: str, value: str | None, seconds: float) -> None:
        """Replace the request key's value (None: drop it, so that a retry starts afresh)."""

    # -- delivery to HubSpot: what the pages passed on (docs/page.md#where-the-page-keeps-what) --
    @abc.abstractmethod
    async def claim_event(self, user_id: str, event_id: str) -> bool:
        """True only for the first page that asks to pass the event on, on any instance.

        Kept as long as the user's history, so a replay of the event to any
        page (a reload, another tab) finds it taken.
        """

    @abc.abstractmethod
    async def acknowledge(self, user_id: str, event_id: str) -> str:
        """Move the user's acknowledged position forward to ``event_id``; the position held.

        It only moves forward: every event up to it was passed on (or
        found taken) by some page, so whichever page reports the newest
        position, resuming from there loses nothing.
        """

    @abc.abstractmethod
    async def acknowledged(self, user_id: str) -> str | None:
        """Where a page that opens resumes the user's stream; None if none is held."""

    @abc.abstractmethod
    async def history_event(self, user_id: str, event_id: str) -> Envelope | None:
        """The event ``event_id`` of the user's history, while it is held (which call a claim is for)."""

    # -- wrap-ups kept for the page (docs/page.md#where-the-page-keeps-what) ----
    @abc.abstractmethod
    async def keep_wrap_up(self, user_id: str, call_key: str, kept: str) -> None:
        """Keep ``kept`` (the page's JSON) for the user's call as long as a call's state.

        Replaces what was kept for the call. A user keeps at most
        ``WRAP_UPS_PER_USER``: past that, the ones written longest ago go.
        """

    @abc.abstractmethod
    async def kept_wrap_ups(self, user_id: str) -> dict[str, str]:
        """What is kept for each of the user's calls (call key -> ``kept``), none expired."""

    @abc.abstractmethod
    async def drop_wrap_up(self, user_id: str, call_key: str) -> None:
        """Forget what was kept for the call (it was sent, or the user discarded it)."""

    # -- rate windows (gateway.dial's per-user dial limit) ---------------------
    @abc.abstractmethod
    async def take_slot(self, user_id: str, name: str, limit: int, seconds: float) -> float | None:
        """Count one use of the user's window ``name`` if it holds fewer than ``limit``.

        None when counted; otherwise nothing is counted and the answer is the
        seconds until a use leaves the window. Atomic and shared by every
        instance on the same broker.
        """

    # -- failed logins (gateway.auth.throttle) ------------------------------
    def login_throttle(self) -> LoginThrottle:
        """Where failed logins are counted: in this process, unless the broker is shared."""
        return LocalLoginThrottle()

    # -- click-to-dial's held ends (gateway.broker.dial_holds) ---------------
    def dial_holds(self) -> DialHolds:
        """Where ends wait for a click-to-dial's reason: in this process, unless the broker is shared."""
        return LocalDialHolds()

    # -- small values with a lifetime (gateway.recordings: where a call's recording is) --
    @abc.abstractmethod
    async def put_value(self, key: str, value: str, seconds: int) -> None:
        """Keep ``value`` under ``key`` for ``seconds``, shared by every instance; replaces one held."""

    @abc.abstractmethod
    async def get_value(self, key: str) -> str | None:
        """The value kept under ``key``, or None once it expired or was never kept."""

    # -- streams -----------------------------------------------------------
    async def subscribe(self, user_id: str, last_event_id: str | None) -> StreamQueue:
        sub = StreamQueue(user_id, self.stream_buffer)
        subs = self._local.setdefault(user_id, {})
        subs[sub] = None
        # One credential must not hold unbounded streams: past the cap the
        # oldest goes (a forgotten tab, most likely).
        for old in list(subs)[: max(0, len(subs) - self.streams_per_user)]:
            old.close("too-many-streams")
        try:
            await self._listen(user_id, first=len(subs) == 1)
            last = parse_event_id(last_event_id)
            # A fresh stream starts with what happens from now on, and is
            # told where "now" is, so that if it drops before its first event
            # it can still resume from there; a resumed one first gets what
            # it missed.
            if last is None:
                head = await self._head(user_id)
                sub.head_id = format_event_id(head)
                sub.resume_after(head, [], gap=False)
            else:
                replay, gap = await self._replay(user_id, last)
                sub.resume_after(last, replay, gap)
        except BaseException:
            self.unsubscribe(sub)
            raise
        return sub

    def unsubscribe(self, sub: StreamQueue) -> None:
        sub.close(sub.reason or "closed")
        subs = self._local.get(sub.user_id)
        if subs is None:
            return
        subs.pop(sub, None)
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

    def stream_counts(self) -> dict[str, int]:
        """Open streams in this process, per user (the operator page)."""
        return {user: len(subs) for user, subs in self._local.items()}

    def _deliver(self, user_id: str, envelope: Envelope) -> None:
        for sub in tuple(self._local.get(user_id, ())):
            sub.offer(envelope)

    async def _listen(self, user_id: str, first: bool) -> None:
        """Make sure live events for the user reach this process."""
        return None

    def _unlisten(self, user_id: str) -> None:
        return None

    @abc.abstractmethod
    async def _head(self, user_id: str) -> EventId:
        """An id to resume from that stands for "now": every later event is newer."""

    @abc.abstractmethod
    async def _replay(self, user_id: str, after: EventId) -> tuple[list[Envelope], bool]:
        """History after ``after``, and whether some of it was already dropped."""
