"""Wrap-ups kept for the page, in both brokers: per user and call, at most
WRAP_UPS_PER_USER, for a call's lifetime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.broker import Broker, memory
from gateway.broker.base import WRAP_UPS_PER_USER
from gateway.broker.redis import broker as redis_broker
from tests.support.fake_time import Clock
from tests.support.harness import make_settings, running_gateway
from tests.support.servers import RedisServer

TTL = 3600


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock(1_000_000.0)
    monkeypatch.setattr(memory, "time", fake)
    monkeypatch.setattr(redis_broker, "time", fake)
    return fake


@pytest.fixture(params=["memory", "redis"])
async def broker(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Broker]:
    extra = {}
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        extra["redis_url"] = server.url
    async with running_gateway(make_settings(tmp_path, call_ttl_seconds=TTL, **extra)) as client:
        yield client.gateway.broker


async def test_a_kept_wrap_up_is_read_back_and_replaced_by_the_next(broker: Broker) -> None:
    await broker.keep_wrap_up("u1", "t:c1", '{"notes":"first"}')
    await broker.keep_wrap_up("u1", "t:c1", '{"notes":"second"}')
    await broker.keep_wrap_up("u2", "t:c1", '{"notes":"bob\'s"}')
    assert await broker.kept_wrap_ups("u1") == {"t:c1": '{"notes":"second"}'}


async def test_a_dropped_wrap_up_is_gone_and_the_others_stay(broker: Broker) -> None:
    await broker.keep_wrap_up("u1", "t:c1", "one")
    await broker.keep_wrap_up("u1", "t:c2", "two")
    await broker.drop_wrap_up("u1", "t:c1")
    await broker.drop_wrap_up("u1", "t:never")
    assert await broker.kept_wrap_ups("u1") == {"t:c2": "two"}


async def test_past_the_cap_the_wrap_ups_written_longest_ago_go(broker: Broker, clock: Clock) -> None:
    for n in range(WRAP_UPS_PER_USER + 2):
        await broker.keep_wrap_up("u1", f"t:c{n}", str(n))
        clock.now += 1
    await broker.keep_wrap_up("u1", "t:c2", "rewritten")  # the newest now, not the oldest
    await broker.keep_wrap_up("u1", "t:new", "new")
    kept = await broker.kept_wrap_ups("u1")
    assert len(kept) == WRAP_UPS_PER_USER
    assert "t:c0" not in kept and "t:c1" not in kept and "t:c3" not in kept
    assert kept["t:c2"] == "rewritten" and kept["t:new"] == "new"


async def test_a_wrap_up_is_kept_as_long_as_a_calls_state(broker: Broker, clock: Clock) -> None:
    await broker.keep_wrap_up("u1", "t:old", "old")
    clock.now += TTL - 10
    await broker.keep_wrap_up("u1", "t:young", "young")
    assert set(await broker.kept_wrap_ups("u1")) == {"t:old", "t:young"}
    clock.now += 20
    assert await broker.kept_wrap_ups("u1") == {"t:young": "young"}
