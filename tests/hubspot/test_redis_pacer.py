"""HubSpot's windows kept in Redis: every instance of the gateway counts
against the same portal limit, as HubSpot counts them."""

from __future__ import annotations

import secrets
import socket
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio

from gateway.hubspot.ratelimit import Busy
from gateway.hubspot.redis_pacer import RedisPacer
from tests.support.servers import RedisServer

Instances = Callable[..., RedisPacer]


@pytest_asyncio.fixture
async def instances(redis_server: RedisServer) -> AsyncIterator[Instances]:
    """Pacers as separate gateway instances would make them, on one Redis."""
    made: list[RedisPacer] = []
    prefix = f"pace-{secrets.token_hex(4)}"  # this test's own keys

    def make(general: tuple[int, float] = (100, 10.0), search: tuple[int, float] = (4, 1.0)) -> RedisPacer:
        pacer = RedisPacer(redis_server.url, prefix, general=general, search=search)
        made.append(pacer)
        return pacer

    yield make
    for pacer in made:
        await pacer.close()


async def test_two_instances_share_a_portals_window(instances: Instances) -> None:
    first, second = instances(general=(2, 10.0)), instances(general=(2, 10.0))
    await first.acquire(100)
    await second.acquire(100)
    assert await first.delay(100, search=False) > 9
    assert await second.delay(100, search=False) > 9


async def test_one_portals_limit_does_not_slow_another(instances: Instances) -> None:
    first, second = instances(general=(1, 10.0)), instances(general=(1, 10.0))
    await first.acquire(100)
    assert await second.delay(200, search=False) == 0


async def test_searches_count_in_both_windows(instances: Instances) -> None:
    first, second = (
        instances(general=(3, 10.0), search=(1, 5.0)),
        instances(general=(3, 10.0), search=(1, 5.0)),
    )
    await first.acquire(100, search=True)
    assert await second.delay(100, search=True) > 4
    assert await second.delay(100, search=False) == 0
    await second.acquire(100)
    await second.acquire(100)
    assert await first.delay(100, search=False) > 9  # the search took one of the three


async def test_a_slot_frees_when_the_window_moves_on(instances: Instances) -> None:
    first, second = instances(general=(1, 0.2)), instances(general=(1, 0.2))
    await first.acquire(100)
    assert await second.delay(100, search=False) > 0
    await second.acquire(100)  # waits out the window, then takes it
    assert await first.delay(100, search=False) > 0


async def test_a_429_seen_by_one_instance_holds_the_portal_for_all(instances: Instances) -> None:
    first, second = instances(), instances()
    await first.hold(100, 5)
    assert 4 < await second.delay(100, search=False) <= 5
    await second.hold(100, 1)  # a shorter hold never cuts a longer one
    assert await first.delay(100, search=False) > 4
    assert await second.delay(200, search=False) == 0


async def test_a_portal_held_longer_than_the_wait_allowed_is_busy_at_once(instances: Instances) -> None:
    first, second = instances(), instances()
    await first.hold(100, 30)
    with pytest.raises(Busy) as busy:
        await second.acquire(100, max_wait=2.0)
    assert 29 < busy.value.seconds <= 30


async def test_without_redis_requests_go_unpaced_rather_than_stop() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    pacer = RedisPacer(f"redis://127.0.0.1:{port}", "nowhere", general=(1, 10.0))
    try:
        await pacer.acquire(100)
        await pacer.acquire(100)
        await pacer.hold(100, 5)
    finally:
        await pacer.close()
