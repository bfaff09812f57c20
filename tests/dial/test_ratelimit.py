"""The per-user dial window: its arithmetic (pure, the clock passed in) and each broker's."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.broker.base import SlidingWindows
from gateway.broker.memory import MemoryBroker
from gateway.broker.redis import RedisBroker
from gateway.dial.ratelimit import retry_after_seconds
from tests.support.harness import make_settings
from tests.support.servers import RedisServer

LIMIT, SECONDS = 3, 60.0


def use_at(windows: SlidingWindows, *times: float) -> None:
    for at in times:
        assert windows.take("u", LIMIT, SECONDS, at) is None


def test_the_window_admits_exactly_its_number_of_uses() -> None:
    windows = SlidingWindows()
    use_at(windows, 0, 1, 2)
    assert windows.take("u", LIMIT, SECONDS, 2.5) == 57.5


def test_a_use_leaves_the_window_exactly_its_length_later() -> None:
    windows = SlidingWindows()
    use_at(windows, 0, 1, 2)
    assert windows.take("u", LIMIT, SECONDS, 59.99) is not None
    assert windows.take("u", LIMIT, SECONDS, 60.0) is None


def test_keys_are_limited_apart() -> None:
    windows = SlidingWindows()
    use_at(windows, 0, 1, 2)
    assert windows.take("other", LIMIT, SECONDS, 3) is None


def test_a_refused_use_does_not_count() -> None:
    windows = SlidingWindows()
    use_at(windows, 0, 1, 2)
    for at in (10, 20, 30):
        assert windows.take("u", LIMIT, SECONDS, at) is not None
    assert windows.take("u", LIMIT, SECONDS, 60) is None


def test_a_sweep_forgets_only_keys_past_the_window() -> None:
    windows = SlidingWindows()
    use_at(windows, 0, 1, 2)
    windows.sweep(30, SECONDS)
    assert windows.take("u", LIMIT, SECONDS, 30) is not None
    windows.sweep(62, SECONDS)
    use_at(windows, 62, 62, 62)


def test_retry_after_is_whole_seconds_and_at_least_one() -> None:
    assert [retry_after_seconds(w) for w in (0.001, 1.0, 1.2, 57.5)] == [1, 1, 2, 58]


async def test_the_memory_broker_counts_in_one_window_per_user_and_name(tmp_path: Path) -> None:
    broker = MemoryBroker(make_settings(tmp_path))
    answers = [await broker.take_slot("alice", "dial", 2, 60) for _ in range(3)]
    assert answers[:2] == [None, None]
    assert answers[2] is not None and 59 < answers[2] <= 60
    assert await broker.take_slot("bob", "dial", 2, 60) is None
    assert await broker.take_slot("alice", "other", 2, 60) is None


async def test_redis_keeps_one_window_for_every_instance(tmp_path: Path, redis_server: RedisServer) -> None:
    settings = make_settings(tmp_path, redis_url=redis_server.url)
    one, two = RedisBroker(settings), RedisBroker(settings)
    try:
        # Taken at once from both instances: exactly the limit is counted.
        answers = await asyncio.gather(
            *(broker.take_slot("alice", "dial", 5, 60) for broker in (one, two) for _ in range(6))
        )
        assert sorted(a is None for a in answers) == [False] * 7 + [True] * 5
        waits = [a for a in answers if a is not None]
        assert all(59 < w <= 60 for w in waits)
        assert await two.take_slot("bob", "dial", 5, 60) is None
    finally:
        await one.close()
        await two.close()


async def test_a_redis_window_lets_a_use_in_again_once_its_length_passed(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    broker = RedisBroker(make_settings(tmp_path, redis_url=redis_server.url))
    try:
        assert await broker.take_slot("alice", "dial", 1, 0.2) is None
        wait = await broker.take_slot("alice", "dial", 1, 0.2)
        assert wait is not None and 0 < wait <= 0.2
        await asyncio.sleep(wait + 0.01)  # a window is time itself: nothing to await instead
        assert await broker.take_slot("alice", "dial", 1, 0.2) is None
    finally:
        await broker.close()
