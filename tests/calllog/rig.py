"""A call logger on a tracker, with HubSpot's side in memory and a clock the test moves."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gateway.broker.base import Broker
from gateway.broker.memory import MemoryBroker
from gateway.calllog.service import CallLogger
from gateway.calllog.settings import CallLogSettings
from gateway.config import Settings
from gateway.model import Direction, Phase, Signal
from gateway.ops.metrics import Metrics
from gateway.outbox.sqlite import SqliteStore
from gateway.outbox.store import JobStore
from gateway.tracker import CallTracker
from gateway.users.directory import Directory, User
from tests.support.crm_records import InMemoryCallRecords

PORTAL = 100
GRACE = 30.0
ALICE = User(id="u-alice", login="alice", tenant=PORTAL, password_hash="-", hubspot_user_id=501)
# Rung by the same calls as Alice (a ring group, a call between them): same call keys.
BOB = User(id="u-bob", login="bob", tenant=PORTAL, password_hash="-", hubspot_user_id=502)
CALLER = "+15555550199"
ALICE_NUMBER = "+15555550101"


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def ring(call_id: str = "c1", at_ms: int = 1_700_000_000_000, user: User = ALICE) -> Signal:
    return Signal(
        "sip",
        call_id,
        user.id,
        Direction.INBOUND,
        Phase.RINGING,
        at_ms,
        from_number=CALLER,
        to_number=ALICE_NUMBER,
    )


def answer(call_id: str = "c1", at_ms: int = 1_700_000_002_000, user: User = ALICE) -> Signal:
    return Signal("sip", call_id, user.id, Direction.INBOUND, Phase.ANSWERED, at_ms)


def hang_up(call_id: str = "c1", at_ms: int = 1_700_000_062_000, user: User = ALICE) -> Signal:
    return Signal("sip", call_id, user.id, Direction.INBOUND, Phase.ENDED, at_ms)


@dataclass
class Rig:
    tracker: CallTracker
    logger: CallLogger
    records: InMemoryCallRecords
    clock: Clock
    metrics: Metrics
    stores: list[JobStore] = field(default_factory=list)

    async def call(self, *signals: Signal) -> None:
        for signal in signals:
            await self.tracker.observe(signal)

    async def run_due(self) -> int:
        """Run every job due now (and those they enqueue); how many ran."""
        ran = 0
        while await self.logger.outbox.run_once():
            ran += 1
        return ran

    async def after_grace(self) -> int:
        self.clock.now += GRACE
        return await self.run_due()


def make_rig(
    store: JobStore,
    *,
    broker: Broker | None = None,
    records: InMemoryCallRecords | None = None,
    clock: Clock | None = None,
    app_id: str = "4242",
) -> Rig:
    metrics = Metrics()
    tracker = CallTracker(broker or MemoryBroker(Settings()), metrics)
    records = records or InMemoryCallRecords()
    clock = clock or Clock()
    directory = Directory([ALICE, BOB])
    logger = CallLogger(
        CallLogSettings(grace_seconds=GRACE, app_id=app_id),
        store,
        tracker,
        records,
        lambda: directory,
        metrics,
        clock=clock,
    )
    return Rig(tracker, logger, records, clock, metrics, [store])


def sqlite_store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "var" / "outbox.sqlite3")
