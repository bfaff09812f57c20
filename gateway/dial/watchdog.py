"""The dial watchdog: a placed dial that no telephony ever ends is ended at its deadline.

A route's telephony may never report a dial's end: a provider that drops
a webhook, a PBX whose dialog events miss the phone's call, a user leg
answered whose dialled leg is never reported. Without a deadline the
call would ring in HubSpot until it expired. Each placed dial gets one:
the route's ``ring_seconds`` plus a margin. At the deadline a call that
is neither answered nor ended is ended with the model's status for an
unanswered outbound call (CANCELED), through the tracker, so the page gets
``callEnded`` and ``callCompleted``.

Where the deadline is kept:

- with a job store (the gateway on Redis: ``gateway.outbox.redis`` under
  its own key prefix), the deadline is a job due at that time, shared by
  every instance. Each instance's watchdog takes the due ones; the store
  leases a job to one of them, and a job whose taker died is taken again
  when its lease ends. So a dial ends at its deadline even when the
  instance that placed it stopped;
- without one (the memory broker: one process, whose calls die with it),
  a task in this process.

The check and the end are one atomic step in the broker: an answer or end
stored meanwhile by any instance wins, and an end arriving after the
watchdog's is a duplicate the model ignores. Running a deadline twice (a
lease that ran out) is therefore harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable

from gateway.dial.routes import DialPlan
from gateway.model import Direction, Phase, Signal
from gateway.outbox.jobs import Job
from gateway.outbox.store import JobStore, StoreUnavailable
from gateway.tracker import BrokerUnavailable, CallTracker, Conflict

log = logging.getLogger("gateway.dial")

# Beyond the route's own ring time: its telephony's last report may be late.
MARGIN_SECONDS = 30.0
# When the broker is down at the deadline, tries again after these waits.
_RETRY_SECONDS = (1.0, 5.0, 15.0, 30.0)
# A shared deadline's job kind; its key is the dial's call key.
DEADLINE = "dial-deadline"
# Ending a call is one broker step: a taker that holds a job this long died.
LEASE_SECONDS = 60.0
# How often each instance looks for deadlines that came due (a dial ends
# up to this late).
POLL_SECONDS = 1.0
# How many handled deadlines ``passed`` remembers (for the tests and logs only).
_REMEMBERED = 1000


class DialWatchdog:
    def __init__(
        self,
        tracker: CallTracker,
        margin_seconds: float = MARGIN_SECONDS,
        store: JobStore | None = None,
        *,
        clock: Callable[[], float] = time.time,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.tracker = tracker
        self.margin_seconds = margin_seconds
        self.store = store
        self.clock = clock
        self.poll_seconds = poll_seconds
        self._tasks: set[asyncio.Task[None]] = set()
        self._poller: asyncio.Task[None] | None = None
        self._passed: dict[str, asyncio.Event] = {}
        self._closed = False
        self._stopping = asyncio.Event()

    async def arm(self, plan: DialPlan, ring_seconds: float, match_seconds: float) -> None:
        """Give the placed dial its deadline: ``ring_seconds`` plus the margin from now."""
        deadline = max(0.0, ring_seconds) + self.margin_seconds
        if self.store is not None:
            now = self.clock()
            job = Job(plan.call_key, DEADLINE, _payload(plan, deadline, match_seconds), now, now + deadline)
            try:
                await self.store.put(job)
                return
            except StoreUnavailable as exc:
                # The call exists and must end: this process keeps the deadline instead.
                log.warning("dial %s: deadline not shared, kept here (%s)", plan.call_key, exc)
        task = asyncio.create_task(
            self._expire(plan, deadline, match_seconds), name=f"dial-watchdog-{plan.call_id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def running(self) -> tuple[asyncio.Task[None], ...]:
        """The deadlines this process keeps in tasks (placed dials not yet past theirs)."""
        return tuple(self._tasks)

    async def passed(self, call_key: str) -> None:
        """Return once this process handled the deadline of ``call_key`` (ended the call or not)."""
        await self._event(call_key).wait()

    def handled(self, call_key: str) -> bool:
        """Whether this process handled the deadline of ``call_key`` (among the latest ones)."""
        event = self._passed.get(call_key)
        return event is not None and event.is_set()

    async def start(self) -> None:
        if self.store is not None:
            self._poller = asyncio.create_task(self._poll(), name="dial-deadlines")

    async def stop(self) -> None:
        """Drop the deadlines this process keeps; shared ones stay for the other instances."""
        self._stopping.set()
        if self._poller is not None:
            # Not cancelled: redis-py may turn a cancel inside a command into a
            # connection error; the poller ends at its next look instead.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._poller), 10)
            self._poller.cancel()
            self._poller = None
        tasks = tuple(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.store is not None and not self._closed:
            self._closed = True
            await self.store.close()

    # -- deadlines in this process ----------------------------------------------
    async def _expire(self, plan: DialPlan, deadline: float, match_seconds: float) -> None:
        await asyncio.sleep(deadline)
        for wait in (*_RETRY_SECONDS, None):
            try:
                await self._end(plan, deadline, match_seconds)
                break
            except (BrokerUnavailable, Conflict) as exc:
                if wait is None:
                    log.warning("dial %s: past its deadline, not ended (%s)", plan.call_key, exc)
                    break
                await asyncio.sleep(wait)
        self._event(plan.call_key).set()

    # -- shared deadlines ---------------------------------------------------------
    async def _poll(self) -> None:
        assert self.store is not None
        while not self._stopping.is_set():
            try:
                while not self._stopping.is_set() and await self._run_one(self.store):
                    pass
            except StoreUnavailable as exc:
                log.warning("dial deadlines unavailable, trying again: %s", exc)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_seconds):  # not wait_for: see gateway/outbox/worker.py
                    await self._stopping.wait()

    async def _run_one(self, store: JobStore) -> bool:
        """End the dial of one due deadline; ``False`` when none is due."""
        job = await store.take(self.clock(), LEASE_SECONDS, secrets.token_hex(12))
        if job is None:
            return False
        try:
            plan, deadline, match_seconds = _from_payload(job)
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("dial deadline %s unreadable, dropped: %s", job.key, exc)
            await store.complete(job, self.clock())
            return True
        try:
            await self._end(plan, deadline, match_seconds)
        except (BrokerUnavailable, Conflict) as exc:
            if job.attempts < len(_RETRY_SECONDS):
                await store.reschedule(job, self.clock() + _RETRY_SECONDS[job.attempts], str(exc))
                return True
            log.warning("dial %s: past its deadline, not ended (%s)", plan.call_key, exc)
        await store.complete(job, self.clock())
        self._event(plan.call_key).set()
        return True

    # -- both -----------------------------------------------------------------------
    async def _end(self, plan: DialPlan, deadline: float, match_seconds: float) -> None:
        if match_seconds > 0:
            # The dial is over: a later call of the user to the number is its own.
            await self.tracker.forget_dial(plan.user_id, plan.target, plan.call_key)
        signal = Signal(
            source="dial",
            call_id=plan.call_id,
            user_id=plan.user_id,
            direction=Direction.OUTBOUND,
            phase=Phase.ENDED,
            at_ms=int(time.time() * 1000),
            from_number=plan.caller_id,
            to_number=plan.target,
        )
        if await self.tracker.end_unanswered(signal):
            log.info(
                "dial %s: no answer or end reported within %g s; ended by the deadline",
                plan.call_key,
                deadline,
            )

    def _event(self, call_key: str) -> asyncio.Event:
        event = self._passed.get(call_key)
        if event is None:
            if len(self._passed) >= _REMEMBERED:
                with contextlib.suppress(StopIteration):
                    del self._passed[next(iter(self._passed))]
            event = self._passed[call_key] = asyncio.Event()
        return event


def _payload(plan: DialPlan, deadline: float, match_seconds: float) -> dict[str, object]:
    return {
        "user": plan.user_id,
        "tenant": plan.tenant,
        "call": plan.call_id,
        "target": plan.target,
        "caller_id": plan.caller_id,
        "route": plan.route,
        "deadline": deadline,
        "match_seconds": match_seconds,
    }


def _from_payload(job: Job) -> tuple[DialPlan, float, float]:
    data = job.payload
    plan = DialPlan(
        user_id=str(data["user"]),
        tenant=int(data["tenant"]),
        call_id=str(data["call"]),
        target=str(data["target"]),
        caller_id=None if data["caller_id"] is None else str(data["caller_id"]),
        route=str(data["route"]),
    )
    return plan, float(data["deadline"]), float(data["match_seconds"])
