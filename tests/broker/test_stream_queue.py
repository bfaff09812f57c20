"""A stuck client is cut off; nobody else waits for it."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from gateway.broker.stream_queue import StreamQueue
from gateway.wire import Envelope
from tests.support.harness import make_settings, running_gateway, signal
from tests.support.logcheck import expect_log


def test_a_full_buffer_closes_the_subscription_instead_of_growing() -> None:
    sub = StreamQueue("u1", limit=3)
    for n in range(1, 5):
        sub.offer(Envelope(f"1-{n}", "{}"))
    assert sub.closed
    assert sub.reason == "overflow"
    assert sub.pending() == []


def test_copies_of_replayed_events_arriving_live_are_dropped() -> None:
    sub = StreamQueue("u1", limit=10)
    sub.offer(Envelope("1-3", "live copy"))
    sub.resume_after((1, 1), [Envelope("1-2", "a"), Envelope("1-3", "b")], gap=False)
    sub.offer(Envelope("1-4", "c"))
    assert [e.data for e in sub.pending()] == ["a", "b", "c"]


async def test_a_client_that_stops_reading_is_cut_off_and_others_keep_up(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, stream_buffer=16, heartbeat_seconds=30)
    async with running_gateway(settings) as gw:
        token = await gw.login("alice")
        host, port = gw.base_url.removeprefix("http://").split(":")
        stuck = socket.socket()
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.setblocking(False)
        await asyncio.get_running_loop().sock_connect(stuck, (host, int(port)))
        request = f"GET /api/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
        await asyncio.get_running_loop().sock_sendall(stuck, request.encode())
        # Cut off mid-response, its stream cannot complete the response; uvicorn says so.
        try:
            with expect_log("uvicorn.error", "returned without completing response"):
                async with gw.stream(token) as healthy:
                    name = "N" * 128
                    # Bursts smaller than the buffer: a reading client keeps up.
                    for batch in range(1000):
                        calls = [signal(f"s{batch}-{i}", "ringing", remoteName=name) for i in range(12)]
                        assert (await gw.ingest({"signals": calls})).status_code == 202
                        received = [await healthy.next() for _ in calls]
                        assert [e.json["externalCallId"] for e in received] == [
                            f"ingest:{c['callId']}" for c in calls
                        ]
                        if gw.gateway.metrics.overflows._value.get() == 1:
                            break
                    else:
                        raise AssertionError("the stuck stream was never cut off")
                    # Its subscription goes when its response ends, a moment later
                    # on a loaded machine; the healthy one stays.
                    async with asyncio.timeout(10):
                        while gw.gateway.broker.stream_count() != 1:  # noqa: ASYNC110
                            await asyncio.sleep(0.01)
                assert "gateway_stream_overflows_total 1.0" in (await gw.http.get("/metrics")).text
        finally:
            stuck.close()
