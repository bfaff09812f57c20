"""The demo route of ``./dev run``: plays a dialled call with no telephony behind it.

It acts like a CPaaS that passes our call id through: its reports are
signals of its own ("demo:…") that name the dialled call, so they join it
exactly. Four numbers show the other endings (docs/dialling.md#demo):

- ``DEMO_BUSY`` rings and ends BUSY;
- ``DEMO_NO_ANSWER`` rings until it ends NO_ANSWER;
- ``DEMO_CANCELED``: the user never picks up their own phone; ends CANCELED;
- ``DEMO_REFUSED`` is refused by the "exchange": the dial fails (FAILED).

Any other number rings, is answered and ends COMPLETED.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time

from gateway.dial.routes import DialPlan, DialRefused, Placed, Refusal
from gateway.model import Direction, EndStatus, Phase, Signal
from gateway.tracker import BrokerUnavailable, CallTracker, Conflict
from gateway.users.directory import User

log = logging.getLogger("gateway.dial.demo")

DEMO_BUSY = "+15555550186"
DEMO_NO_ANSWER = "+15555550108"
DEMO_REFUSED = "+15555550113"
DEMO_CANCELED = "+15555550142"
# Seconds of ringing, of talk, and of ringing before nobody answered.
DIAL_TIMING = {"ring": 3.0, "talk": 5.0, "no_answer": 8.0}


class DemoDialler:
    name = "demo"
    match_seconds = 0.0  # every report names the dialled call
    chooses_caller_id = True
    needs_caller_id = True
    ring_seconds = max(DIAL_TIMING["ring"], DIAL_TIMING["no_answer"])

    def __init__(self, tracker: CallTracker) -> None:
        self.tracker = tracker
        self._playing: set[asyncio.Task[None]] = set()

    def refusal_for(self, user: User) -> Refusal | None:
        return None  # the demo rings no phone of the user's

    async def place(self, plan: DialPlan) -> Placed:
        if plan.target == DEMO_REFUSED:
            raise DialRefused.by_route(f"the demo exchange refused the call to {plan.target}")
        reference = f"demo-{secrets.token_hex(4)}"
        task = asyncio.create_task(self._play(plan, reference), name=f"dial-demo-{reference}")
        self._playing.add(task)
        task.add_done_callback(self._playing.discard)
        return Placed(reference=reference)

    async def _play(self, plan: DialPlan, reference: str) -> None:
        async def report(phase: Phase, end: EndStatus | None = None) -> None:
            signal = Signal(
                source="demo",
                call_id=reference,
                user_id=plan.user_id,
                direction=Direction.OUTBOUND,
                phase=phase,
                at_ms=int(time.time() * 1000),
                from_number=plan.caller_id,
                to_number=plan.target,
                end_status=end,
            )
            await self.tracker.observe(signal, dial_key=plan.call_key)

        try:
            await report(Phase.RINGING)
            if plan.target == DEMO_NO_ANSWER:
                await asyncio.sleep(DIAL_TIMING["no_answer"])
                await report(Phase.ENDED, EndStatus.NO_ANSWER)
                return
            await asyncio.sleep(DIAL_TIMING["ring"])
            if plan.target == DEMO_BUSY:
                await report(Phase.ENDED, EndStatus.BUSY)
                return
            if plan.target == DEMO_CANCELED:
                # As a CPaaS reports a user leg nobody picked up: the number was never dialled.
                await report(Phase.ENDED, EndStatus.CANCELED)
                return
            await report(Phase.ANSWERED)
            await asyncio.sleep(DIAL_TIMING["talk"])
            await report(Phase.ENDED, EndStatus.COMPLETED)
        except (BrokerUnavailable, Conflict) as exc:
            log.warning("demo dial %s stopped: %s", reference, exc)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        for task in tuple(self._playing):
            task.cancel()
