"""Click-to-dial's held ends: a mark, ends held under it, one take; on a real redis-server and embedded.

``redis``: two brokers on one redis-server, as two instances (the referrer
marks and takes, the other holds); ``memory``: the embedded broker's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.crc import key_slot

from gateway.broker.dial_holds import MAX_HELD, DialHolds, LocalDialHolds
from gateway.broker.redis import RedisBroker
from gateway.broker.redis.keys import Keys
from tests.support.harness import make_settings
from tests.support.redis_topologies import ClusterSetup
from tests.support.servers import RedisServer

NUMBER = "+12125550100"


@pytest.fixture(params=["redis", "memory"])
async def holds(
    request: pytest.FixtureRequest, tmp_path: Path, redis_server: RedisServer
) -> AsyncIterator[tuple[DialHolds, DialHolds]]:
    """(the referrer's, another instance's)."""
    if request.param == "memory":
        one = LocalDialHolds()
        yield one, one
        return
    settings = make_settings(tmp_path, redis_url=redis_server.url)
    brokers = RedisBroker(settings), RedisBroker(settings)
    try:
        yield brokers[0].dial_holds(), brokers[1].dial_holds()
    finally:
        for broker in brokers:
            await broker.close()


async def test_an_end_held_under_a_mark_is_taken_by_the_referrer_and_the_mark_goes_with_it(
    holds: tuple[DialHolds, DialHolds],
) -> None:
    referrer, other = holds
    await referrer.mark("alice", NUMBER, "leg-1", 60)
    assert await other.hold("alice", NUMBER, "end-1")
    assert await referrer.release("alice", NUMBER, "leg-1") == ["end-1"]
    assert not await other.hold("alice", NUMBER, "end-2")  # after the take: delivered at once
    assert await referrer.release("alice", NUMBER, "leg-1") == []


async def test_without_a_mark_for_that_user_and_number_an_end_is_not_held(
    holds: tuple[DialHolds, DialHolds],
) -> None:
    referrer, other = holds
    await referrer.mark("alice", NUMBER, "leg-1", 60)
    assert not await other.hold("alice", "+12125550199", "end-1")
    assert not await other.hold("bob", NUMBER, "end-2")


async def test_held_ends_are_taken_in_the_order_they_came_and_at_most_a_bounded_number(
    holds: tuple[DialHolds, DialHolds],
) -> None:
    referrer, other = holds
    await referrer.mark("alice", NUMBER, "leg-1", 60)
    for n in range(MAX_HELD + 3):
        assert await other.hold("alice", NUMBER, f"end-{n}")
    assert await referrer.release("alice", NUMBER, "leg-1") == [f"end-{n}" for n in range(3, MAX_HELD + 3)]


async def test_a_release_leaves_the_mark_and_ends_of_a_newer_dial_to_the_same_number(
    holds: tuple[DialHolds, DialHolds],
) -> None:
    referrer, other = holds
    await referrer.mark("alice", NUMBER, "leg-1", 60)
    await other.mark("alice", NUMBER, "leg-2", 60)
    assert await other.hold("alice", NUMBER, "end-1")
    assert await referrer.release("alice", NUMBER, "leg-1") == []
    assert await other.hold("alice", NUMBER, "end-2")  # still held for leg-2
    assert await other.release("alice", NUMBER, "leg-2") == ["end-1", "end-2"]


async def test_a_mark_runs_out_but_what_it_held_is_still_taken_by_a_late_referrer(
    holds: tuple[DialHolds, DialHolds],
) -> None:
    referrer, other = holds
    await referrer.mark("alice", NUMBER, "leg-1", 0.1)
    assert await other.hold("alice", NUMBER, "end-1")
    await asyncio.sleep(0.2)  # a lifetime is time itself: nothing to await instead
    assert not await other.hold("alice", NUMBER, "end-2")
    assert await referrer.release("alice", NUMBER, "leg-1") == ["end-1"]


async def test_every_end_is_either_held_and_taken_or_not_held_whatever_the_interleaving(
    holds: tuple[DialHolds, DialHolds],
) -> None:
    referrer, other = holds
    # Scripts loaded and connections open first, so that they go in about the order sent.
    await referrer.mark("bob", NUMBER, "leg-0", 60)
    await asyncio.gather(
        *(other.hold("bob", NUMBER, "warm") for _ in range(40)), referrer.release("bob", NUMBER, "leg-0")
    )
    await referrer.mark("alice", NUMBER, "leg-1", 60)
    items = [f"end-{n}" for n in range(40)]
    # Sent in this order, answered as Redis takes them: the take falls among the holds.
    holding = [asyncio.create_task(other.hold("alice", NUMBER, item)) for item in items[:20]]
    taking = asyncio.create_task(referrer.release("alice", NUMBER, "leg-1"))
    holding += [asyncio.create_task(other.hold("alice", NUMBER, item)) for item in items[20:]]
    answers = [await task for task in holding]
    taken = await taking
    taken_later = await referrer.release("alice", NUMBER, "leg-1")
    held = [item for item, was_held in zip(items, answers, strict=True) if was_held]
    assert taken_later == []
    assert sorted(taken) == sorted(held)


async def test_on_a_real_redis_cluster_each_step_runs_in_the_users_slot(
    tmp_path: Path, cluster: ClusterSetup
) -> None:
    settings = make_settings(tmp_path, redis_url=cluster.url)
    brokers = RedisBroker(settings), RedisBroker(settings)
    try:
        referrer, other = brokers[0].dial_holds(), brokers[1].dial_holds()
        await referrer.mark("alice", NUMBER, "leg-1", 60)
        assert await other.hold("alice", NUMBER, "end-1")  # a script on two keys: one slot, or CROSSSLOT
        assert await referrer.release("alice", NUMBER, "leg-1") == ["end-1"]
    finally:
        for broker in brokers:
            await broker.close()


def test_the_mark_and_held_ends_are_in_the_cluster_slot_of_the_users_other_keys() -> None:
    keys = Keys("gw", cluster=True)
    names = [keys.dial_mark("alice", NUMBER), keys.dial_held("alice", NUMBER), keys.history("alice")]
    assert len({key_slot(name.encode()) for name in names}) == 1
