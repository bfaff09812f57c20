"""The dial watchdog: a placed dial that no telephony ever ends is ended at its deadline.

A route's telephony may never report a dial's end: a provider that drops
a webhook, a PBX whose dialog events miss the phone's call, a user leg
answered whose dialled leg is never reported. Without a deadline the
call would ring in HubSpot until it expired. Each placed dial gets one:
the route's ``ring_seconds`` plus a margin. At the deadline a call that
is neither answered nor ended is ended with the model's status for an
unanswered outbound call (CANCELED), through the tracker, so the page gets
``callEnded`` and ``callCompleted``.

Only the instance that placed the dial keeps its deadline (a task in this
process). The check and the end are one atomic step in the broker: an
answer or end stored meanwhile by any instance wins, and an end arriving
after the watchdog's is a duplicate the model ignores.
"""

from __future__ import annotations

import asyncio
import logging
import time

from gateway.dial.routes import DialPlan
from gateway.model import Direction, Phase, Signal
from gateway.tracker import BrokerUnavailable, CallTracker, Conflict

log = logging.getLogger("gateway.dial")

# Beyond the route's own ring time: its telephony's last report may be late.
MARGIN_SECONDS = 30.0
# When the broker is down at the deadline, tries again after these waits.
_RETRY_SECONDS = (1.0, 5.0, 15.0, 30.0)


class DialWatchdog:
    def __init__(self, tracker: CallTracker, margin_seconds: float = MARGIN_SECONDS) -> None:
        self.tracker = tracker
        self.margin_seconds = margin_seconds
        self._tasks: set[asyncio.Task[None]] = set()

    def arm(self, plan: DialPlan, ring_seconds: float, match_seconds: float) -> None:
        """Give the placed dial its deadline: ``ring_seconds`` plus the margin from now."""
        deadline = max(0.0, ring_seconds) + self.margin_seconds
        task = asyncio.create_task(
            self._expire(plan, deadline, match_seconds), name=f"dial-watchdog-{plan.call_id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def running(self) -> tuple[asyncio.Task[None], ...]:
        """The deadlines this process keeps (placed dials not yet past theirs)."""
        return tuple(self._tasks)

    async def stop(self) -> None:
        tasks = tuple(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _expire(self, plan: DialPlan, deadline: float, match_seconds: float) -> None:
        await asyncio.sleep(deadline)
        for wait in (*_RETRY_SECONDS, None):
            try:
                await self._end(plan, deadline, match_seconds)
                return
            except (BrokerUnavailable, Conflict) as exc:
                if wait is None:
                    log.warning("dial %s: past its deadline, not ended (%s)", plan.call_key, exc)
                    return
                await asyncio.sleep(wait)

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
