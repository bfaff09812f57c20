"""Many authenticated SSE streams held by one lean client process.

Each stream is an ``asyncio.Protocol`` (no task, no reader buffer of its
own) that parses what arrives and hands every event to a shared
``Deliveries`` record, stamped with the time it arrived.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from bench.sse import ProtocolError, SseParser

MARKER = b'"externalCallId":"bench:c'


def call_id(seq: int, sent_ns: int) -> str:
    """The bench's call ids carry the event's number and its send time."""
    return f"c{seq}-{sent_ns}"


def parse_call_id(payload: bytes) -> tuple[int, int] | None:
    start = payload.find(MARKER)
    if start < 0:
        return None
    start += len(MARKER)
    end = payload.find(b'"', start)
    seq, _, sent = payload[start:end].partition(b"-")
    return int(seq), int(sent)


@dataclass
class Deliveries:
    """What the streams received: per event how often, and each latency."""

    counts: dict[int, int] = field(default_factory=dict)
    latencies_ns: list[int] = field(default_factory=list)
    arrivals_ns: list[int] = field(default_factory=list)
    foreign: int = 0  # events that were not the bench's own
    closed: int = 0  # streams the server ended or cut off after opening
    last_ns: int = 0
    _goal: int = 0
    _goal_met: asyncio.Event | None = None

    async def reached(self, total: int) -> None:
        """Return once ``total`` deliveries have been recorded."""
        if self.total >= total:
            return
        self._goal, self._goal_met = total, asyncio.Event()
        await self._goal_met.wait()

    def record(self, payload: bytes, now_ns: int) -> None:
        parsed = parse_call_id(payload)
        if parsed is None:
            self.foreign += 1
            return
        seq, sent_ns = parsed
        self.counts[seq] = self.counts.get(seq, 0) + 1
        self.latencies_ns.append(now_ns - sent_ns)
        self.arrivals_ns.append(now_ns)
        self.last_ns = now_ns
        if self._goal_met is not None and self.total >= self._goal:
            self._goal_met.set()

    @property
    def total(self) -> int:
        return len(self.latencies_ns)


class StreamClient(asyncio.Protocol):
    def __init__(self, user: str, request: bytes, deliveries: Deliveries) -> None:
        self.user = user
        self._request = request
        self._deliveries = deliveries
        self._parser = SseParser()
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, but behave as one.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic_ns()
        try:
            events = self._parser.feed(data)
        except (ProtocolError, ValueError) as exc:
            self._fail(exc)
            return
        if not self.opened.done():
            if self._parser.status and self._parser.status != 200:
                self._fail(ProtocolError(f"stream answered {self._parser.status}"))
                return
            if self._parser.opened:
                self.opened.set_result(None)
        for payload in events:
            self._deliveries.record(payload, now)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ProtocolError("closed before the stream opened"))
        else:
            self._deliveries.closed += 1

    def _fail(self, exc: Exception) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()


def stream_request(host: str, port: int, token: str) -> bytes:
    return (
        f"GET /api/stream HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n"
        f"Authorization: Bearer {token}\r\n\r\n"
    ).encode()


async def open_streams(
    host: str,
    port: int,
    logins: list[tuple[str, str]],
    deliveries: Deliveries,
    parallel: int = 200,
    timeout: float = 60.0,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[StreamClient], list[BaseException]]:
    """One stream per (user, token), ``parallel`` connection attempts at a time.

    Returns the streams that opened and the errors of those that did not.
    """
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(parallel)
    done = 0

    async def one(user: str, token: str) -> StreamClient:
        nonlocal done
        async with gate:
            client = StreamClient(user, stream_request(host, port, token), deliveries)
            await loop.create_connection(lambda: client, host, port)
            try:
                await asyncio.wait_for(asyncio.shield(client.opened), timeout)
            except BaseException:
                client.close()
                raise
            done += 1
            if progress is not None and done % 1000 == 0:
                progress(done)
            return client

    results = await asyncio.gather(*(one(u, t) for u, t in logins), return_exceptions=True)
    opened = [r for r in results if isinstance(r, StreamClient)]
    return opened, [r for r in results if isinstance(r, BaseException)]
