"""The embedded broker: one process, no Redis, state in memory."""

from __future__ import annotations

import time
from collections import deque

from gateway.broker.base import WRAP_UPS_PER_USER, Broker, Join, SlidingWindows, Step
from gateway.config import Settings
from gateway.model import CallState
from gateway.wire import Envelope, EventId, encode_event, parse_event_id


class MemoryBroker(Broker):
    """Everything in dictionaries; atomic because nothing awaits mid-update."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.history_size, settings.stream_buffer, settings.streams_per_user)
        self._ttl = settings.call_ttl_seconds
        # Ids carry the process's start time, so a browser resuming with an
        # id from before a restart is seen to have a gap, not a match.
        self._epoch = int(time.time() * 1000)
        # One counter for the process, not one per user: ids then order the
        # same way whichever user's history they come from.
        self._seq = 0
        self._trimmed: dict[str, EventId] = {}
        self._history: dict[str, deque[Envelope]] = {}
        self._calls: dict[tuple[str, str], tuple[CallState, float]] = {}
        self._next_sweep = 0.0
        self._burnt: dict[str, float] = {}  # credential id -> when it expires
        self._next_burn_sweep = 0.0

        # Dialling (gateway.dial): (user, source's call key) -> (dial key, expiry);
        # (user, remote) -> (dial key, expiry); (user, request key) -> (value, expiry).
        self._bound: dict[tuple[str, str], tuple[str, float]] = {}
        self._pending: dict[tuple[str, str], tuple[str, float]] = {}
        self._requests: dict[tuple[str, str], tuple[str, float]] = {}

        # Delivery (claim_event, acknowledge): (user, event id) -> expiry;
        # user -> (acknowledged position, expiry).
        self._claimed: dict[tuple[str, str], float] = {}
        self._acked: dict[str, tuple[str, float]] = {}
        # Rate windows: per (user, name), the times of the uses still counted.
        self._windows = SlidingWindows()
        self._longest_window = 0.0
        # Values (put_value): key -> (value, expiry).
        self._values: dict[str, tuple[str, float]] = {}
        # Wrap-ups (keep_wrap_up): user -> call -> (kept, expiry), oldest write first.
        self._wrap_ups: dict[str, dict[str, tuple[str, float]]] = {}

    async def ping(self) -> bool:
        return True

    async def transact(
        self, user_id: str, call_key: str, step: Step, join: Join | None = None
    ) -> list[Envelope]:
        now = time.monotonic()
        self._sweep(now)
        if join is not None:
            dial_key = self._joined(user_id, call_key, join, now)
            if dial_key is not None:
                call_key, step = dial_key, join.rekey(dial_key)
        key = (user_id, call_key)
        held = self._calls.get(key)
        state, events = step(held[0] if held else None)
        if state is not None:
            self._calls[key] = (state, now + self._ttl)
        if not events:
            return []
        assert state is not None
        history = self._history.setdefault(user_id, deque(maxlen=self.history_size))
        out: list[Envelope] = []
        for event in events:
            self._seq += 1
            envelope = Envelope(f"{self._epoch}-{self._seq}", encode_event(state, event))
            if len(history) == history.maxlen:
                self._trimmed[user_id] = parse_event_id(history[0].id) or (0, 0)
            history.append(envelope)
            self._deliver(user_id, envelope)
            out.append(envelope)
        return out

    async def get_call(self, user_id: str, call_key: str) -> CallState | None:
        held = self._calls.get((user_id, call_key))
        if held is None or held[1] < time.monotonic():
            return None
        return held[0]

    async def burn(self, token_id: str, ttl_seconds: int) -> bool:
        now = time.monotonic()
        if now >= self._next_burn_sweep:
            self._next_burn_sweep = now + 60
            self._burnt = {k: until for k, until in self._burnt.items() if until > now}
        until = self._burnt.get(token_id)
        if until is not None and until > now:
            return False
        self._burnt[token_id] = now + ttl_seconds
        return True

    async def unburn(self, token_id: str) -> None:
        self._burnt.pop(token_id, None)

    # -- dialling (gateway.dial) -------------------------------------------------
    def _joined(self, user_id: str, call_key: str, join: Join, now: float) -> str | None:
        """The dialled call this one is, binding it on first sight; None if it is its own."""
        bound = _live(self._bound.get((user_id, call_key)), now)
        if bound is not None:
            return bound
        if (user_id, call_key) in self._calls:
            return None
        dial_key = None
        if join.dial_key is not None and (user_id, join.dial_key) in self._calls:
            dial_key = join.dial_key
        elif join.remote is not None:
            dial_key = _live(self._pending.pop((user_id, join.remote), None), now)
        if dial_key is not None:
            self._bound[(user_id, call_key)] = (dial_key, now + self._ttl)
        return dial_key

    async def expect_dial(self, user_id: str, remote: str, dial_key: str, seconds: float) -> None:
        self._pending[(user_id, remote)] = (dial_key, time.monotonic() + seconds)

    async def forget_dial(self, user_id: str, remote: str, dial_key: str) -> bool:
        held = self._pending.get((user_id, remote))
        if held is None or held[0] != dial_key:
            return False
        del self._pending[(user_id, remote)]
        return held[1] >= time.monotonic()

    async def bind_call(self, user_id: str, call_key: str, dial_key: str) -> None:
        self._bound[(user_id, call_key)] = (dial_key, time.monotonic() + self._ttl)

    async def claim_request(self, user_id: str, request_key: str, value: str, seconds: float) -> str | None:
        now = time.monotonic()
        held = _live(self._requests.get((user_id, request_key)), now)
        if held is not None:
            return held
        self._requests[(user_id, request_key)] = (value, now + seconds)
        return None

    async def settle_request(self, user_id: str, request_key: str, value: str | None, seconds: float) -> None:
        if value is None:
            self._requests.pop((user_id, request_key), None)
        else:
            self._requests[(user_id, request_key)] = (value, time.monotonic() + seconds)

    # -- delivery to HubSpot: claims and the acknowledged position ---------------
    async def claim_event(self, user_id: str, event_id: str) -> bool:
        now = time.monotonic()
        self._sweep(now)
        expires = self._claimed.get((user_id, event_id))
        if expires is not None and expires >= now:
            return False
        self._claimed[(user_id, event_id)] = now + self._ttl
        return True

    async def acknowledge(self, user_id: str, event_id: str) -> str:
        now = time.monotonic()
        held = _live(self._acked.get(user_id), now)
        if held is not None and (parse_event_id(held) or (0, 0)) >= (parse_event_id(event_id) or (0, 0)):
            event_id = held
        self._acked[user_id] = (event_id, now + self._ttl)
        return event_id

    async def acknowledged(self, user_id: str) -> str | None:
        return _live(self._acked.get(user_id), time.monotonic())

    async def history_event(self, user_id: str, event_id: str) -> Envelope | None:
        # The history is bounded (history_size): a scan is cheap.
        return next((e for e in self._history.get(user_id, ()) if e.id == event_id), None)

    # -- wrap-ups kept for the page -------------------------------------------------
    async def keep_wrap_up(self, user_id: str, call_key: str, kept: str) -> None:
        now = time.monotonic()
        self._sweep(now)
        held = self._wrap_ups.setdefault(user_id, {})
        held.pop(call_key, None)  # rewritten: the newest again
        held[call_key] = (kept, now + self._ttl)
        for oldest in list(held)[: max(0, len(held) - WRAP_UPS_PER_USER)]:
            del held[oldest]

    async def kept_wrap_ups(self, user_id: str) -> dict[str, str]:
        now = time.monotonic()
        held = self._wrap_ups.get(user_id, {})
        return {call: kept for call, (kept, expires) in held.items() if expires >= now}

    async def drop_wrap_up(self, user_id: str, call_key: str) -> None:
        self._wrap_ups.get(user_id, {}).pop(call_key, None)

    # -- rate windows (gateway.dial's per-user dial limit) ----------------------
    async def take_slot(self, user_id: str, name: str, limit: int, seconds: float) -> float | None:
        now = time.monotonic()
        self._longest_window = max(self._longest_window, seconds)
        return self._windows.take(f"{user_id}\0{name}", limit, seconds, now)

    # -- small values with a lifetime (gateway.recordings) ------------------------
    async def put_value(self, key: str, value: str, seconds: int) -> None:
        now = time.monotonic()
        self._sweep(now)
        self._values[key] = (value, now + seconds)

    async def get_value(self, key: str) -> str | None:
        return _live(self._values.get(key), time.monotonic())

    async def _head(self, user_id: str) -> EventId:
        return (self._epoch, self._seq)

    async def _replay(self, user_id: str, after: EventId) -> tuple[list[Envelope], bool]:
        history = list(self._history.get(user_id, ()))
        if after[0] != self._epoch or after[1] > self._seq:
            # From before a restart, or from no history of ours at all.
            return history, True
        newer = [e for e in history if (parse_event_id(e.id) or (0, 0)) > after]
        trimmed = self._trimmed.get(user_id)
        return newer, trimmed is not None and trimmed > after

    def _sweep(self, now: float) -> None:
        # Expired calls are dropped at most once a minute, in one pass.
        if now < self._next_sweep:
            return
        self._next_sweep = now + 60
        for key in [k for k, (_, expires) in self._calls.items() if expires < now]:
            del self._calls[key]
        for held in (self._bound, self._pending, self._requests):
            for kept in [k for k, (_, expires) in held.items() if expires < now]:
                del held[kept]
        for name in [k for k, (_, expires) in self._values.items() if expires < now]:
            del self._values[name]
        for claim in [k for k, expires in self._claimed.items() if expires < now]:
            del self._claimed[claim]
        for user in [k for k, (_, expires) in self._acked.items() if expires < now]:
            del self._acked[user]
        for user, calls in list(self._wrap_ups.items()):
            for call in [k for k, (_, expires) in calls.items() if expires < now]:
                del calls[call]
            if not calls:
                del self._wrap_ups[user]
        self._windows.sweep(now, self._longest_window)


def _live(held: tuple[str, float] | None, now: float) -> str | None:
    return held[0] if held is not None and held[1] >= now else None
