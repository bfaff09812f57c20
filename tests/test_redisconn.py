"""Redis users besides the broker on Cluster and Sentinel URLs: outbox, token store, SIP ownership.

Each builds its client with ``gateway.redisconn.connect``; these tests run
them on a real three-master cluster and across a real Sentinel failover
(``tests/support/redis_topologies.py``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import pytest

from gateway.broker.redis_coordination import RedisCoordination
from gateway.hubspot.cipher import TokenCipher
from gateway.hubspot.redis_store import RedisTokenStore
from gateway.hubspot.tokens import PortalTokens
from gateway.outbox.jobs import Job
from gateway.outbox.redis import RedisStore
from gateway.redisconn import close, connect
from tests.support.redis_topologies import ClusterSetup, SentinelSetup, running

T0 = 1_700_000_000.0
KEY = "token-key-for-tests-0123456789"
AOR = "sip:1001@pbx.test"
Result = TypeVar("Result")


@pytest.fixture(scope="module")
def cluster() -> Iterator[ClusterSetup]:
    with running(ClusterSetup()) as setup:
        yield setup


def fail_over(setup: SentinelSetup) -> None:
    """Kill the primary once the replica has every write, and wait for the sentinels to promote it."""
    with setup.primary.client() as primary:
        assert primary.wait(1, 5000) == 1
    first = setup.primary_port()
    setup.primary.kill()
    deadline = time.monotonic() + 30
    while setup.primary_port() == first:
        assert time.monotonic() < deadline, "no failover"
        time.sleep(0.1)


async def once_reconnected(step: Callable[[], Awaitable[Result]]) -> Result:
    """``step`` after a failover: the first try may meet a connection the old primary cut."""
    deadline = time.monotonic() + 20
    while True:
        try:
            return await step()
        except Exception:
            if time.monotonic() > deadline:
                raise
            continue


def job(key: str) -> Job:
    return Job(key, "log", {"call": "sip:c1"}, T0, T0)


async def test_the_factory_names_its_client_by_the_url_and_closes_the_sentinels_too(
    sentinel_setup: SentinelSetup,
) -> None:
    def clients() -> set[str]:
        with sentinel_setup.sentinels[0].client() as sentinel:
            return {c["addr"] for c in sentinel.client_list()}

    before = clients()
    client = connect(sentinel_setup.url)
    assert await client.set("gw:probe", "1")
    with sentinel_setup.primary.client() as primary:
        assert primary.get("gw:probe") == "1"  # written to the primary the sentinels name
    assert clients() - before  # the factory asked the sentinel
    await close(client)
    # Nothing of the factory's is left on the sentinel (only the peers' and this look-up's).
    assert len(clients() - before) <= 1


async def test_the_outbox_runs_its_jobs_on_a_cluster(cluster: ClusterSetup) -> None:
    store = RedisStore(cluster.url, prefix="gwc")
    try:
        assert await store.put(job("log:u1:sip:c1"))
        assert await store.put(job("log:u2:sip:c2"))
        taken = await store.take(T0, 60, "t1")
        assert taken is not None
        assert await store.bury(taken, "rejected", T0 + 1)
        stats = await store.stats()
        assert (stats.depth, stats.dead) == (1, 1)
        assert [d.reason for d in await store.dead_letters()] == ["rejected"]
        again = await store.take(T0, 60, "t2")
        assert again is not None and await store.complete(again, T0 + 2)
    finally:
        await store.close()


async def test_the_token_store_keeps_tokens_on_a_cluster(cluster: ClusterSetup) -> None:
    store = RedisTokenStore(cluster.url, "gwc", TokenCipher(KEY))
    try:
        await store.save(PortalTokens(100, "access", "refresh", T0))
        assert (await store.load())[100].access_token == "access"
    finally:
        await store.close()


async def test_leases_and_call_claims_hold_on_a_cluster(cluster: ClusterSetup) -> None:
    one, two = RedisCoordination(cluster.url, "gwc"), RedisCoordination(cluster.url, "gwc")
    try:
        assert sorted(await one.heartbeat(5)) == [one.instance_id]
        assert sorted(await two.heartbeat(5)) == sorted([one.instance_id, two.instance_id])
        # AORs in different slots: the renewals go out in one pipeline over several nodes.
        aors = [f"sip:{n}@pbx.test" for n in range(1001, 1011)]
        tokens = {aor: await one.acquire(aor, 10) for aor in aors}
        assert all(token is not None for token in tokens.values())
        assert await two.acquire(aors[0], 10) is None
        assert await one.renew({aor: int(t or 0) for aor, t in tokens.items()}, 10) == []
        assert await one.claim_call(AOR, "dialog-1", "call-a", 60) == "call-a"
        assert await two.claim_call(AOR, "dialog-1", "call-b", 60) == "call-a"
        assert await one.save_publication(AOR, "p1", None, '{"etag": "e1", "expires_ms": 1}', 1)
        assert await two.remove_publication(AOR, "p1", "e1") is not None
    finally:
        await one.close()
        await two.close()


async def test_the_outbox_keeps_its_jobs_across_a_sentinel_failover(sentinel_setup: SentinelSetup) -> None:
    store = RedisStore(sentinel_setup.url)
    try:
        assert await store.put(job("log:u1:sip:c1"))
        fail_over(sentinel_setup)
        assert await once_reconnected(lambda: store.put(job("log:u2:sip:c2")))
        assert (await store.stats()).depth == 2
        assert await store.take(T0, 60, "t1") is not None
    finally:
        await store.close()


async def test_the_token_store_keeps_tokens_across_a_sentinel_failover(sentinel_setup: SentinelSetup) -> None:
    store = RedisTokenStore(sentinel_setup.url, "gw", TokenCipher(KEY))
    try:
        await store.save(PortalTokens(100, "access", "refresh", T0))
        fail_over(sentinel_setup)
        loaded = await once_reconnected(store.load)
        assert loaded[100].refresh_token == "refresh"
        await store.save(PortalTokens(200, "a2", "r2", T0))
        assert sorted(await store.load()) == [100, 200]
    finally:
        await store.close()


async def test_a_lease_and_a_call_claim_hold_across_a_sentinel_failover(
    sentinel_setup: SentinelSetup,
) -> None:
    one, two = RedisCoordination(sentinel_setup.url, "gw"), RedisCoordination(sentinel_setup.url, "gw")
    try:
        token = await one.acquire(AOR, 30)
        assert token is not None
        assert await one.claim_call(AOR, "dialog-1", "call-a", 60) == "call-a"
        fail_over(sentinel_setup)
        assert await once_reconnected(lambda: one.renew({AOR: token}, 30)) == []
        assert await once_reconnected(lambda: two.acquire(AOR, 30)) is None
        assert await two.claim_call(AOR, "dialog-1", "call-b", 60) == "call-a"
    finally:
        await one.close()
        await two.close()
