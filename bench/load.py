"""Signals at a set rate through the signed ingest endpoint.

Signals go in batches (the endpoint takes up to 100 per request) over a few
keep-alive connections; each batch is stamped with its send time just
before it is written, and each signal's call id carries that time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field

from bench.streams import call_id
from gateway.auth.ingest_signature import sign


class Poster:
    """One keep-alive HTTP/1.1 connection that POSTs signed ingest batches."""

    def __init__(self, host: str, port: int, secret: str) -> None:
        self._host, self._port, self._secret = host, port, secret
        self._conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, body: bytes) -> int:
        if self._conn is None:
            self._conn = await asyncio.open_connection(self._host, self._port)
        reader, writer = self._conn
        now = int(time.time())
        head = (
            f"POST /api/ingest HTTP/1.1\r\nHost: {self._host}:{self._port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"X-Gateway-Timestamp: {now}\r\nX-Gateway-Signature: {sign(self._secret, now, body)}\r\n\r\n"
        )
        writer.write(head.encode() + body)
        status = int((await reader.readline()).split()[1])
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await reader.readexactly(length)
        return status

    async def close(self) -> None:
        if self._conn is not None:
            writer = self._conn[1]
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            self._conn = None


@dataclass
class Sent:
    """What was sent: per event, the user it went to; and what was refused."""

    users: dict[int, str] = field(default_factory=dict)
    rejected: dict[int, int] = field(default_factory=dict)  # status -> signals
    batches: int = 0
    first_ns: int = 0
    last_ns: int = 0


def _signal(seq: int, sent_ns: int, user: str) -> dict[str, object]:
    return {
        "source": "bench",
        "callId": call_id(seq, sent_ns),
        "user": user,
        "direction": "inbound",
        "phase": "ringing",
        "from": "+15555550100",
    }


async def send_events(
    host: str,
    port: int,
    secret: str,
    users: list[str],
    count: int,
    rate: float,
    *,
    tick: float = 0.01,
    max_batch: int = 100,
    connections: int = 8,
) -> Sent:
    """Send ``count`` ringing signals, round-robin over ``users``, at ``rate`` per second."""
    sent = Sent()
    idle: asyncio.Queue[Poster] = asyncio.Queue()
    posters = [Poster(host, port, secret) for _ in range(connections)]
    for poster in posters:
        idle.put_nowait(poster)
    pending: set[asyncio.Task[None]] = set()

    async def batch(first: int, size: int) -> None:
        poster = await idle.get()
        try:
            now_ns = time.monotonic_ns()
            signals = []
            for seq in range(first, first + size):
                user = users[seq % len(users)]
                sent.users[seq] = user
                signals.append(_signal(seq, now_ns, user))
            body = json.dumps({"signals": signals}, separators=(",", ":")).encode()
            sent.last_ns = now_ns
            status = await poster.post(body)
            sent.batches += 1
            if status != 202:
                sent.rejected[status] = sent.rejected.get(status, 0) + size
        finally:
            idle.put_nowait(poster)

    start = time.monotonic()
    sent.first_ns = time.monotonic_ns()
    issued = 0
    try:
        while issued < count:
            due = min(count, int(rate * (time.monotonic() - start)) + 1)
            while issued < due:
                size = min(max_batch, due - issued)
                task = asyncio.create_task(batch(issued, size))
                pending.add(task)
                task.add_done_callback(pending.discard)
                issued += size
            await asyncio.sleep(tick)
        if pending:
            await asyncio.gather(*pending)
    finally:
        for task in pending:
            task.cancel()
        for poster in posters:
            await poster.close()
    return sent
