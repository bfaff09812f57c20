"""One way to turn any accepted ``GATEWAY_REDIS_URL`` into a client, and one way to close it.

``redis://``, ``rediss://`` and ``unix://`` give a plain client;
``redis+sentinel://h:p,.../<service>[/<db>]`` the primary the sentinels name
(asked again after every lost connection, so a failover is a reconnect);
``redis+cluster://h:p,...`` a cluster client from seed nodes. Every user of
Redis builds its client here, the broker included.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

from gateway.config import redis_nodes, sentinel_service

RedisClient = aioredis.Redis | RedisCluster


def is_cluster(url: str) -> bool:
    return urlsplit(url).scheme == "redis+cluster"


def connect(
    url: str,
    *,
    max_connections: int = 20,
    socket_connect_timeout: float = 2,
    socket_timeout: float | None = None,
    wait_for_connection: bool = False,
) -> RedisClient:
    """A client for ``url`` (decoded responses); no connection is made before the first command.

    ``wait_for_connection``: with ``max_connections`` in use, a command on
    one server waits for one to come free (the caller's deadline bounds the
    wait) rather than fail with "Too many connections".
    """
    parts = urlsplit(url)
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_connect_timeout": socket_connect_timeout,
        "socket_timeout": socket_timeout,
        "max_connections": max_connections,
    }
    auth: dict[str, Any] = {"username": parts.username, "password": parts.password}
    if parts.scheme == "redis+cluster":
        nodes = [ClusterNode(host, port) for host, port in redis_nodes(url)]
        return RedisCluster(startup_nodes=nodes, **options, **auth)
    if parts.scheme == "redis+sentinel":
        service, db = sentinel_service(url)
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            redis_nodes(url),
            sentinel_kwargs={"socket_connect_timeout": socket_connect_timeout, **auth},
        )
        client: aioredis.Redis = sentinel.master_for(service, db=db, **options, **auth)
        return client
    if wait_for_connection:
        pool = aioredis.BlockingConnectionPool.from_url(url, timeout=None, **options)
        return aioredis.Redis.from_pool(pool)
    return aioredis.Redis.from_url(url, **options)


async def close(client: RedisClient) -> None:
    """Close ``client``'s connections, and for a Sentinel primary the sentinels' too."""
    await client.aclose()
    if isinstance(client, aioredis.Redis) and isinstance(client.connection_pool, SentinelConnectionPool):
        for sentinel in client.connection_pool.sentinel_manager.sentinels:
            await sentinel.aclose()
