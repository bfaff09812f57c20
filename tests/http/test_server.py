"""The server as `gateway serve` configures it: a bounded request head."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from gateway.http.server import MAX_HEAD_BYTES
from tests.support.harness import Client


async def _exchange(gateway: Client, head: bytes) -> bytes:
    """Send ``head`` on a fresh connection, whole or not; what the server answered, up to its close."""
    url = urlsplit(gateway.base_url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        writer.write(head)
        async with asyncio.timeout(5):
            await writer.drain()
            return await reader.read()
    finally:
        writer.close()


async def test_a_request_head_over_the_limit_is_answered_431_without_waiting_for_its_end(
    gateway: Client,
) -> None:
    # A megabyte of one header, never finished: nothing but the cap can answer it.
    head = b"GET /healthz HTTP/1.1\r\nhost: gateway\r\nx-big: " + b"a" * (1024 * 1024)
    answer = await _exchange(gateway, head)
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert (await gateway.http.get("/healthz")).status_code == 200


async def test_many_headers_adding_up_past_the_limit_are_answered_431(gateway: Client) -> None:
    headers = b"".join(b"x-h%d: %s\r\n" % (i, b"v" * 100) for i in range(MAX_HEAD_BYTES // 100))
    answer = await _exchange(gateway, b"GET /healthz HTTP/1.1\r\nhost: gateway\r\n" + headers + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 431 ")


async def test_a_head_just_under_the_limit_is_served(gateway: Client) -> None:
    response = await gateway.http.get("/healthz", headers={"x-big": "a" * (MAX_HEAD_BYTES - 1024)})
    assert response.status_code == 200


async def test_the_limit_applies_again_to_the_next_request_on_a_kept_connection(gateway: Client) -> None:
    small = b"GET /healthz HTTP/1.1\r\nhost: gateway\r\n\r\n"
    big = b"GET /healthz HTTP/1.1\r\nhost: gateway\r\nx-big: " + b"a" * (4 * 1024 * 1024)
    answer = await _exchange(gateway, small + big)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert b"HTTP/1.1 431 " in answer
