"""The demo call of ``./dev run``: a scripted source for the simulator.

It plays one call (ringing, answered, ended) for a user through the tracker,
like any source, so the simulator shows a whole call without a PBX or the
ingest secret. Offered only in dev mode (``gateway.http.web``).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time

from gateway.model import Direction, EndStatus, Phase, Signal
from gateway.tracker import BrokerUnavailable, CallTracker
from gateway.users.directory import User

log = logging.getLogger("gateway.demo")

# Seconds of ringing and of talk in a demo call.
DEMO_TIMING = {"ring": 3.0, "talk": 5.0}
# The numbers of a user who has none, and of the demo's other party.
_FALLBACK_OWN = "+15555550100"
_REMOTE = "+15555550123"

_PLAYING: set[asyncio.Task[None]] = set()


async def start_demo_call(tracker: CallTracker, user: User, direction: Direction) -> str:
    """Rings now, answers and hangs up later; the SDK's externalCallId of the call.

    ``BrokerUnavailable`` from the first signal passes through (the caller
    answers 503); a later one stops the demo with a log line.
    """
    call_id = f"demo-{secrets.token_hex(4)}"
    own = user.own_number or _FALLBACK_OWN
    inbound = direction is Direction.INBOUND

    def signal(phase: Phase, end: EndStatus | None = None) -> Signal:
        return Signal(
            source="demo",
            call_id=call_id,
            user_id=user.id,
            direction=direction,
            phase=phase,
            at_ms=int(time.time() * 1000),
            from_number=_REMOTE if inbound else own,
            to_number=own if inbound else _REMOTE,
            remote_name="Demo Caller",
            end_status=end,
        )

    await tracker.observe(signal(Phase.RINGING))

    async def play() -> None:
        try:
            await asyncio.sleep(DEMO_TIMING["ring"])
            await tracker.observe(signal(Phase.ANSWERED))
            await asyncio.sleep(DEMO_TIMING["talk"])
            await tracker.observe(signal(Phase.ENDED, EndStatus.COMPLETED))
        except BrokerUnavailable as exc:
            log.warning("demo call %s stopped: %s", call_id, exc)

    task = asyncio.create_task(play())
    _PLAYING.add(task)
    task.add_done_callback(_PLAYING.discard)
    return f"demo:{call_id}"
