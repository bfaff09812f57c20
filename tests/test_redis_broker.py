"""Several gateway instances against one real redis-server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.harness import Client, make_settings, running_gateway, signal
from tests.servers import RedisServer


@contextlib.asynccontextmanager
async def two_instances(tmp_path: Path, redis_server: RedisServer) -> AsyncIterator[tuple[Client, Client]]:
    settings = make_settings(tmp_path, redis_url=redis_server.url)
    async with running_gateway(settings) as one, running_gateway(settings) as two:
        yield one, two


async def test_an_event_entering_one_instance_reaches_a_stream_on_another(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with two_instances(tmp_path, redis_server) as (one, two):
        token = await one.login("alice")  # a token from one instance works on the other
        async with two.stream(token) as stream:
            assert (await one.ingest(signal("x1", "ringing"))).status_code == 202
            event = await stream.next()
    assert event.json["type"] == "incomingCall"
    assert event.json["externalCallId"] == "ingest:x1"


async def test_the_same_signal_on_two_instances_emits_one_event(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with two_instances(tmp_path, redis_server) as (one, two):
        token = await one.login("alice")
        async with one.stream(token) as stream:
            for n in range(20):
                body = signal(f"dup{n}", "ringing")
                await asyncio.gather(one.ingest(body), two.ingest(body), one.ingest(body))
            events = await stream.take(20)
            await one.ingest(signal("marker", "ringing"))
            marker = await stream.next()
    assert sorted(e.json["externalCallId"] for e in events) == sorted(f"ingest:dup{n}" for n in range(20))
    assert marker.json["externalCallId"] == "ingest:marker"


async def test_resume_on_another_instance_replays_from_shared_history(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with two_instances(tmp_path, redis_server) as (one, two):
        token = await one.login("alice")
        async with one.stream(token) as stream:
            await one.ingest(signal("h1", "ringing"))
            seen = await stream.next()
        await two.ingest(signal("h1", "answered"))
        await one.ingest(signal("h1", "ended"))
        async with two.stream(token, last_event_id=seen.id) as resumed:
            events = await resumed.take(3)
            await one.ingest(signal("h2", "ringing"))
            live = await resumed.next()
    assert [e.json["type"] for e in events] == ["callAnswered", "callEnded", "callCompleted"]
    assert live.json["externalCallId"] == "ingest:h2"


async def test_streams_are_multiplexed_over_one_pubsub_connection(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with running_gateway(make_settings(tmp_path, redis_url=redis_server.url)) as gw:
        tokens = [await gw.login("alice"), await gw.login("bob")]
        streams = [gw.stream(tokens[i % 2]) for i in range(12)]
        for stream in streams:
            await stream.__aenter__()
        try:
            import redis.asyncio as aioredis

            admin = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
            clients = await admin.client_list()
            await admin.aclose()
            subscribers = [c for c in clients if int(c.get("sub", 0)) > 0]
            assert len(subscribers) == 1
            assert int(subscribers[0]["sub"]) == 3  # alice, bob and the control channel
        finally:
            for stream in streams:
                await stream.close()


async def test_redis_outage_is_reported_and_recovered_from(tmp_path: Path, redis_server: RedisServer) -> None:
    async with running_gateway(make_settings(tmp_path, redis_url=redis_server.url)) as gw:
        token = await gw.login("alice")
        async with gw.stream(token) as stream:
            await gw.ingest(signal("o1", "ringing"))
            await stream.next()
            redis_server.stop()
            await asyncio.wait_for(stream.ended.wait(), 10)
        assert (await gw.http.get("/readyz")).status_code == 503
        assert (await gw.ingest(signal("o2", "ringing"))).status_code == 503
        redis_server.start()
        for _ in range(100):
            if (await gw.http.get("/readyz")).status_code == 200:
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("gateway did not become ready after redis came back")
        async with gw.stream(token) as stream:
            assert (await gw.ingest(signal("o3", "ringing"))).status_code == 202
            assert (await stream.next()).json["externalCallId"] == "ingest:o3"


async def test_a_stream_that_drops_before_its_first_event_loses_nothing(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with two_instances(tmp_path, redis_server) as (one, two):
        token = await one.login("alice")
        async with one.stream(token) as empty_history:
            pass
        assert empty_history.head_id == "0-0"
        await one.ingest(signal("f1", "ringing"))
        async with two.stream(token, last_event_id=empty_history.head_id) as resumed:
            first = await resumed.next()
        async with one.stream(token) as fresh:
            pass
        assert fresh.head_id == first.id
        await one.ingest(signal("f1", "answered"))
        async with two.stream(token, last_event_id=fresh.head_id) as resumed:
            second = await resumed.next()
    assert first.json["type"] == "incomingCall"
    assert second.json["type"] == "callAnswered"
