"""One-use marks (credentials, announcements): used once across instances,
and forgotten when what they were for failed.

``redis``: two brokers on one redis-server, as two instances; ``memory``: the embedded broker.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.broker import Broker
from gateway.broker.memory import MemoryBroker
from gateway.broker.redis import RedisBroker
from tests.support.harness import make_settings
from tests.support.servers import RedisServer


@pytest.fixture(params=["redis", "memory"])
async def brokers(
    request: pytest.FixtureRequest, tmp_path: Path, redis_server: RedisServer
) -> AsyncIterator[tuple[Broker, Broker]]:
    if request.param == "memory":
        one = MemoryBroker(make_settings(tmp_path))
        yield one, one
        return
    settings = make_settings(tmp_path, redis_url=redis_server.url, key_prefix=f"burn-{tmp_path.name}")
    pair = RedisBroker(settings), RedisBroker(settings)
    try:
        yield pair
    finally:
        for broker in pair:
            await broker.close()


async def test_a_mark_is_first_used_once_whichever_instance_asks(brokers: tuple[Broker, Broker]) -> None:
    one, two = brokers
    assert await one.burn("token-1", 60)
    assert not await two.burn("token-1", 60)
    assert not await one.burn("token-1", 60)
    assert await two.burn("token-2", 60)


async def test_a_mark_forgotten_is_first_used_again(brokers: tuple[Broker, Broker]) -> None:
    one, two = brokers
    assert await one.burn("token-1", 60)
    await one.unburn("token-1")
    assert await two.burn("token-1", 60)
    assert not await one.burn("token-1", 60)
