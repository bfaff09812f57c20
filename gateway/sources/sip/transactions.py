"""Transaction layer: retransmissions absorbed on the server side, retried on the client side.

A retransmitted request (same branch, method, Call-ID and CSeq) is answered
again with the bytes of the first answer and never reaches the application
twice; one still being worked on is ignored (its answer is on its way).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gateway.sources.sip.adapter import Response
from gateway.sources.sip.message_rules import branch_of, cseq_of

ServerKey = tuple[str, str, str, int]
IN_PROGRESS = b""


class ServerTransactions:
    """Answers remembered for Timer J (64*T1: how long a peer may retransmit).

    Bounded both in entries and in the bytes of the answers kept, so that a
    flood of requests with large answers cannot grow memory past ``max_bytes``;
    the oldest transactions go first.
    """

    def __init__(
        self, lifetime: float = 32.0, capacity: int = 50_000, max_bytes: int = 64 * 1024 * 1024
    ) -> None:
        self.lifetime = lifetime
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[ServerKey, tuple[float, bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def begin(self, key: ServerKey) -> bytes | None:
        """``None`` for a new transaction (now in progress), else the remembered answer.

        An empty answer means the first copy is still being processed.
        """
        now = time.monotonic()
        self._expire(now)
        entry = self._entries.get(key)
        if entry is not None:
            return entry[1]
        self._entries[key] = (now, IN_PROGRESS)
        while len(self._entries) > self.capacity:
            self._drop_oldest()
        return None

    def finish(self, key: ServerKey, answer: bytes) -> None:
        entry = self._entries.get(key)
        if entry is None:
            return
        self.bytes += len(answer) - len(entry[1])
        self._entries[key] = (entry[0], answer)
        while self.bytes > self.max_bytes and self._entries:
            self._drop_oldest()

    def forget(self, key: ServerKey) -> None:
        """Let a retransmission be processed afresh (the first attempt could not be)."""
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.bytes -= len(entry[1])

    def _drop_oldest(self) -> None:
        _, (_, answer) = self._entries.popitem(last=False)
        self.bytes -= len(answer)

    def _expire(self, now: float) -> None:
        while self._entries:
            started = next(iter(self._entries.values()))[0]
            if now - started < self.lifetime:
                return
            self._drop_oldest()


class TransactionTimeout(Exception):
    pass


@dataclass(frozen=True)
class Timers:
    t1: float = 0.5
    t2: float = 4.0

    @property
    def timeout(self) -> float:  # Timer F
        return 64 * self.t1


def new_branch() -> str:
    return "z9hG4bK" + secrets.token_hex(10)


class ClientTransactions:
    """Non-INVITE client transactions (RFC 3261 §17.1.2), matched by branch and method."""

    def __init__(self, timers: Timers) -> None:
        self.timers = timers
        self._pending: dict[tuple[str, str], asyncio.Future[Response]] = {}
        # reliable transactions by the connection they went out on
        self._over: dict[tuple[str, str], tuple[str, int]] = {}

    def on_connection_lost(self, peer: tuple[str, int]) -> None:
        """Fail at once the transactions whose answer can only come on a connection now closed."""
        for key, target in list(self._over.items()):
            future = self._pending.get(key)
            if target == peer and future is not None and not future.done():
                future.set_exception(ConnectionError(f"connection to {peer[0]}:{peer[1]} lost"))

    def on_response(self, response: Response) -> bool:
        """Hand a response to its transaction; ``False`` if it has none (stray)."""
        key = (branch_of(response), cseq_of(response)[1])
        future = self._pending.get(key)
        if future is None:
            return False
        if response.status_code >= 200 and not future.done():
            future.set_result(response)
        return True

    async def request(
        self,
        branch: str,
        method: str,
        send: Callable[[], Awaitable[None]],
        reliable: bool,
        target: tuple[str, int] | None = None,
    ) -> Response:
        key = (branch, method)
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        if reliable and target is not None:
            self._over[key] = target
        try:
            await send()
            deadline = time.monotonic() + self.timers.timeout
            interval = self.timers.t1
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TransactionTimeout(f"{method} timed out")
                wait = left if reliable else min(interval, left)
                try:
                    return await asyncio.wait_for(asyncio.shield(future), wait)
                except TimeoutError:
                    if not reliable and time.monotonic() < deadline:
                        await send()
                        interval = min(interval * 2, self.timers.t2)
        finally:
            self._pending.pop(key, None)
            self._over.pop(key, None)
            if not future.done():
                future.cancel()
