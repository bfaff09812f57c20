"""Both job stores, each on a real backing: a SQLite file in a temp dir, a real redis-server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from gateway.outbox.redis import RedisStore
from gateway.outbox.sqlite import SqliteStore
from gateway.outbox.store import JobStore

StoreFactory = Callable[[], JobStore]


@pytest.fixture(params=["sqlite", "redis"])
async def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    """Opens a store on the same backing each time it is called (a restart, another instance)."""
    opened: list[JobStore] = []
    if request.param == "redis":
        url = request.getfixturevalue("redis_server").url

        def make() -> JobStore:
            store: JobStore = RedisStore(url, "test")
            opened.append(store)
            return store

    else:

        def make() -> JobStore:
            store: JobStore = SqliteStore(tmp_path / "var" / "outbox.sqlite3")
            opened.append(store)
            return store

    yield make
    for store in opened:
        await store.close()


@pytest.fixture
async def store(open_store: StoreFactory) -> JobStore:
    return open_store()
