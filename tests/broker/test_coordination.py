"""What SIP instances share, on a real redis-server and in the embedded broker."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.crc import key_slot

from gateway.broker.coordination import LocalCoordination
from gateway.broker.redis_coordination import RedisCoordination
from tests.support.servers import RedisServer

AOR = "sip:1001@pbx.test"
PBX = "pbx:ami:100"  # gateway.sources.pbxlink's name of a tenant's AMI connection


@pytest.fixture
async def pair(redis_server: RedisServer) -> AsyncIterator[tuple[RedisCoordination, RedisCoordination]]:
    one, two = RedisCoordination(redis_server.url, "gw"), RedisCoordination(redis_server.url, "gw")
    try:
        yield one, two
    finally:
        await one.close()
        await two.close()


def record(etag: str, expires_ms: int = 0, **dialogs: list[str]) -> str:
    return json.dumps({"etag": etag, "user": "alice", "expires_ms": expires_ms, "dialogs": dialogs})


async def test_a_lease_is_held_by_one_instance_at_a_time(pair: tuple[RedisCoordination, ...]) -> None:
    one, two = pair
    token = await one.acquire(AOR, 10)
    assert token is not None
    assert await two.acquire(AOR, 10) is None
    assert await one.acquire(AOR, 10) == token  # the holder keeps its token


async def test_a_lease_renewed_by_its_holder_stays_and_a_stale_token_cannot_renew_or_release(
    pair: tuple[RedisCoordination, ...],
) -> None:
    one, two = pair
    token = await one.acquire(AOR, 0.3)
    assert token is not None
    assert await one.renew({AOR: token + 1}, 10) == [AOR]  # not the token that holds it
    assert await one.renew({AOR: token}, 10) == []
    await one.release(AOR, token + 1)
    assert await two.acquire(AOR, 10) is None


async def test_a_lease_that_runs_out_goes_to_another_instance_with_a_higher_fencing_token(
    pair: tuple[RedisCoordination, ...],
) -> None:
    one, two = pair
    first = await one.acquire(AOR, 0.1)
    assert first is not None
    deadline = time.monotonic() + 5
    second = None
    while second is None and time.monotonic() < deadline:
        second = await two.acquire(AOR, 10)  # Redis's expiry has no event to await
        await asyncio.sleep(0.02)
    assert second is not None and second > first
    assert await one.renew({AOR: first}, 10) == [AOR]  # the old holder learns it lost it


async def test_a_released_lease_is_free_at_once(pair: tuple[RedisCoordination, ...]) -> None:
    one, two = pair
    token = await one.acquire(AOR, 10)
    assert token is not None
    await one.release(AOR, token)
    assert await two.acquire(AOR, 10) is not None


async def test_the_live_instances_are_those_whose_heartbeat_has_not_run_out(
    pair: tuple[RedisCoordination, ...],
) -> None:
    one, two = pair
    await one.heartbeat(0.1)
    assert sorted(await two.heartbeat(10)) == sorted([one.instance_id, two.instance_id])
    deadline = time.monotonic() + 5
    while one.instance_id in await two.heartbeat(10):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    await two.leave()
    assert await one.heartbeat(10) == [one.instance_id]


async def test_every_key_of_one_aor_is_in_one_cluster_slot(
    pair: tuple[RedisCoordination, ...], redis_server: RedisServer
) -> None:
    one, _ = pair
    token = await one.acquire(AOR, 10)
    assert token is not None
    await one.claim_call(AOR, "k1", "c1", 60)
    await one.save_publication(AOR, "p1", None, record("e1"), int(time.time() * 1000) + 60_000)
    client = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        keys = [k for k in await client.keys("gw:{aor:*") if AOR in k]
        # The slot Redis Cluster would give each (redis-py's CRC16 of the hash tag).
        slots = {key_slot(str(k).encode()) for k in keys}
    finally:
        await client.aclose()
    assert len(keys) == 4  # lease, fence, dialog, publication
    assert len(slots) == 1


async def test_a_pbx_connections_lease_and_legs_have_their_own_key_space(
    pair: tuple[RedisCoordination, ...], redis_server: RedisServer
) -> None:
    one, _ = pair
    assert await one.acquire(PBX, 10) is not None
    await one.claim_call(PBX, "c1 alice", "inbound", 60)
    client = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        keys = sorted(await client.keys("gw:*"))
    finally:
        await client.aclose()
    assert keys == [f"gw:{{{PBX}}}:calls", f"gw:{{{PBX}}}:fence", f"gw:{{{PBX}}}:lease"]


async def test_a_pbx_lease_an_older_version_holds_under_its_aor_key_is_not_taken(
    pair: tuple[RedisCoordination, ...], redis_server: RedisServer
) -> None:
    """A rolling upgrade: the old holder stays the only one connected until it lets go."""
    one, _ = pair
    client = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        await client.set(f"gw:{{aor:{PBX}}}:lease", "old-instance:7", px=10_000)
        assert await one.acquire(PBX, 10) is None
        await client.delete(f"gw:{{aor:{PBX}}}:lease")  # the old holder released it
    finally:
        await client.aclose()
    assert await one.acquire(PBX, 10) is not None


@pytest.mark.parametrize("kind", ["redis", "local"])
async def test_the_first_observer_names_a_call_and_the_name_is_free_again_once_it_ended(
    pair: tuple[RedisCoordination, ...], kind: str
) -> None:
    one, two = pair if kind == "redis" else (LocalCoordination(),) * 2
    assert await one.claim_call(AOR, "ext1001", "first", 60) == "first"
    assert await two.claim_call(AOR, "ext1001", "second", 60) == "first"
    await two.end_call(AOR, "ext1001", "other")  # only the call it names ends it
    assert await two.claim_call(AOR, "ext1001", "third", 60) == "first"
    await one.end_call(AOR, "ext1001", "first")
    assert await two.claim_call(AOR, "ext1001", "fourth", 60) == "fourth"


@pytest.mark.parametrize("kind", ["redis", "local"])
async def test_a_publication_is_refreshed_only_with_its_current_tag_and_keeps_its_dialogs(
    pair: tuple[RedisCoordination, ...], kind: str
) -> None:
    one, two = pair if kind == "redis" else (LocalCoordination(),) * 2
    later = int(time.time() * 1000) + 60_000
    assert await one.save_publication(AOR, "p1", None, record("e1", d1=["c1", "inbound"]), later)
    assert await two.save_publication(AOR, "p1", "e1", record("e2"), later)
    assert not await one.save_publication(AOR, "p1", "e1", record("e3"), later)  # e1 was replaced
    assert await two.remove_publication(AOR, "p1", "e1") is None
    held = await one.remove_publication(AOR, "p1", "e2")
    assert held is not None and json.loads(held)["dialogs"] == {"d1": ["c1", "inbound"]}
    assert not await two.save_publication(AOR, "p1", "e2", record("e4"), later)  # gone


@pytest.mark.parametrize("kind", ["redis", "local"])
async def test_an_expired_publication_is_handed_to_one_instance_and_a_refreshed_one_to_none(
    pair: tuple[RedisCoordination, ...], kind: str
) -> None:
    one, two = pair if kind == "redis" else (LocalCoordination(),) * 2
    now = int(time.time() * 1000)
    await one.save_publication(AOR, "old", None, record("e1", now + 1000), now + 1000)
    await one.save_publication(AOR, "kept", None, record("e2", now + 1000), now + 1000)
    assert await two.save_publication(AOR, "kept", "e2", record("e3", now + 60_000), now + 60_000)
    taken = await asyncio.gather(
        one.take_expired_publications(now + 2000, 10), two.take_expired_publications(now + 2000, 10)
    )
    etags = sorted(json.loads(r)["etag"] for batch in taken for r in batch)
    assert etags == ["e1"]
