"""Recordings kept per call over both brokers: found by any instance, for a while, announced once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from gateway.broker import Broker, make_broker, memory
from gateway.broker.memory import MemoryBroker
from gateway.recordings.location import Recording, decode, encode
from gateway.recordings.store import RecordingStore
from tests.support.harness import make_settings
from tests.support.servers import RedisServer

RECORDING = Recording("twilio:CA1", "twilio", "RE1", "https://api.twilio.com/x.wav", "audio/wav", 2, 100)


@pytest.fixture(params=["memory", "redis"])
async def broker(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Broker]:
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        settings = make_settings(tmp_path, redis_url=server.url)
    else:
        settings = make_settings(tmp_path)
    made = make_broker(settings)
    await made.start()
    try:
        yield made
    finally:
        await made.close()


def test_a_recording_survives_its_stored_form() -> None:
    assert decode(encode(RECORDING)) == RECORDING


@pytest.mark.parametrize("raw", ["", "[]", '{"external_id": 1}', "not json"])
def test_a_stored_form_that_is_not_a_recording_reads_as_none(raw: str) -> None:
    assert decode(raw) is None


async def test_a_kept_recording_is_found_by_its_call(broker: Broker) -> None:
    store = RecordingStore(broker, 60)
    await store.keep(RECORDING)
    assert await store.find("twilio:CA1") == RECORDING
    assert await store.find("twilio:CA2") is None


class Clock:
    now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now


async def test_the_embedded_broker_forgets_a_recording_after_its_lifetime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    monkeypatch.setattr(memory, "time", clock)
    store = RecordingStore(MemoryBroker(make_settings(tmp_path)), 60)
    await store.keep(RECORDING)
    clock.now += 60
    assert await store.find("twilio:CA1") == RECORDING
    clock.now += 0.001
    assert await store.find("twilio:CA1") is None


async def test_redis_keeps_a_recording_with_its_lifetime(tmp_path: Path, redis_server: RedisServer) -> None:
    broker = make_broker(make_settings(tmp_path, redis_url=redis_server.url))
    await RecordingStore(broker, 60).keep(RECORDING)
    raw = aioredis.Redis.from_url(redis_server.url)
    try:
        assert 0 < await raw.ttl("gw:value:recording:twilio:CA1") <= 60
    finally:
        await raw.aclose()
        await broker.close()


async def test_hubspot_is_to_be_told_once_per_recording(broker: Broker) -> None:
    store = RecordingStore(broker, 60)
    assert [await store.first_announcement(RECORDING) for _ in range(3)] == [True, False, False]


async def test_a_vonage_conversation_leads_to_its_leg(broker: Broker) -> None:
    store = RecordingStore(broker, 60)
    await store.remember_conversation("CON-1", "leg-1")
    assert (await store.leg_of("CON-1"), await store.leg_of("CON-2")) == ("leg-1", None)
