"""Commands written and read directly on redis-py's connections (broker.redis.direct), on a real Redis."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from gateway.broker.redis import direct
from tests.support.servers import RedisServer, free_port


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[Redis]:
    redis = Redis.from_url(redis_server.url)
    try:
        yield redis
    finally:
        await redis.aclose()


async def test_a_connection_that_met_readonly_is_not_lent_again(client: Redis) -> None:
    # A primary demoted under a Sentinel set-up answers READONLY: redis-py
    # drops such a connection so that the next one asks Sentinel again for
    # the primary; lent again, it would fail every write after the failover.
    await client.replicaof("127.0.0.1", 1)
    first, refused = await direct.exchange(client.connection_pool, [["CLIENT", "ID"], ["SET", "k", "v"]])
    assert isinstance(refused, ResponseError) and str(refused).startswith("READONLY")
    (second,) = await direct.exchange(client.connection_pool, [["CLIENT", "ID"]])
    assert second != first


async def test_a_caller_cancelled_before_its_reply_leaves_the_next_its_own(
    client: Redis,
) -> None:
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await direct.exchange(client.connection_pool, [["BLPOP", "nothing", "0.5"]])
    assert await direct.exchange(client.connection_pool, [["ECHO", "mine"]]) == ["mine"]


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[str]:
    """A redis-server on TLS only, with a password: its rediss:// URL for database 3."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    openssl = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    openssl += ["-subj", "/CN=127.0.0.1"]
    subprocess.run([*openssl, "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    port = free_port()
    args = ["--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1", "--save", ""]
    args += ["--dir", str(tmp_path)]
    args += ["--tls-cert-file", str(cert), "--tls-key-file", str(key), "--tls-ca-cert-file", str(cert)]
    args += ["--tls-auth-clients", "no", "--requirepass", "s3cret"]
    proc = subprocess.Popen(["redis-server", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        ping = ["redis-cli", "--tls", "--insecure", "-p", str(port), "-a", "s3cret", "--no-auth-warning"]
        ping.append("PING")
        while time.monotonic() < deadline and b"PONG" not in subprocess.run(ping, capture_output=True).stdout:
            time.sleep(0.05)
        yield f"rediss://:s3cret@127.0.0.1:{port}/3?ssl_cert_reqs=none"
    finally:
        proc.kill()
        proc.wait()


async def test_pipelines_and_pubsub_go_over_tls_with_auth_into_the_database_asked_for(tls_redis: str) -> None:
    redis = Redis.from_url(tls_redis, decode_responses=True)
    other = Redis.from_url(tls_redis.replace("/3?", "/0?"), decode_responses=True)
    subscriber = direct.Subscriber(redis.connection_pool)
    try:
        assert await direct.exchange(redis.connection_pool, [["SET", "k", "v"], ["GET", "k"]]) == ["OK", "v"]
        assert await redis.get("k") == "v" and await other.get("k") is None
        await subscriber.open()
        await subscriber.subscribe("news")
        assert await subscriber.read() == [["subscribe", "news", 1]]
        await redis.publish("news", "hello")
        assert await subscriber.read() == [["message", "news", "hello"]]
    finally:
        await subscriber.close()
        await redis.aclose()
        await other.aclose()
