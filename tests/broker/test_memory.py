"""The embedded broker: what it keeps, it lets go of when it expires."""

from __future__ import annotations

import pytest

from gateway.broker import memory
from gateway.broker.memory import MemoryBroker
from gateway.config import Settings
from gateway.model import Direction, Phase, Signal, advance
from tests.support.fake_time import Clock


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(memory, "time", fake)
    return fake


async def ring(broker: MemoryBroker, call_id: str) -> None:
    signal = Signal("t", call_id, "u1", Direction.INBOUND, Phase.RINGING, 1)
    await broker.transact("u1", signal.call_key, lambda state: advance(state, signal))


async def test_expired_dials_requests_and_calls_are_dropped_by_the_sweep(clock: Clock) -> None:
    broker = MemoryBroker(Settings(call_ttl_seconds=60))
    await ring(broker, "c1")
    await broker.expect_dial("u1", "+15555550199", "dial:d1", seconds=30)
    await broker.bind_call("u1", "sip:x", "dial:d1")
    await broker.claim_request("u1", "key-1", "dial:d1", seconds=30)
    clock.now += 3600
    await ring(broker, "c2")  # a transaction runs the sweep
    assert set(broker._calls) == {("u1", "t:c2")}
    assert (len(broker._bound), len(broker._pending), len(broker._requests)) == (0, 0, 0)


async def test_live_entries_survive_the_sweep(clock: Clock) -> None:
    broker = MemoryBroker(Settings(call_ttl_seconds=3600))
    await broker.expect_dial("u1", "+15555550199", "dial:d1", seconds=600)
    clock.now += 120
    await ring(broker, "c1")
    assert await broker.forget_dial("u1", "+15555550199", "dial:d1")
