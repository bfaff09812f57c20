"""A small SSE client for the tests: real HTTP, events awaited, never slept on."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class SseEvent:
    id: str
    event: str
    data: str

    @property
    def json(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.data)
        return value


def summary(events: list[SseEvent]) -> list[str]:
    """Each event as its type, an end with its status: ``["outgoingCall", "callEnded:BUSY", ...]``."""
    out = []
    for event in events:
        status = event.json["payload"].get("callEndStatus")
        out.append(f"{event.json['type']}:{status}" if status else event.json["type"])
    return out


class SseStream:
    def __init__(self, client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> None:
        self._client = client
        self._url = url
        self._headers = headers
        self.events: asyncio.Queue[SseEvent] = asyncio.Queue()
        self.connected = asyncio.Event()
        self.ended = asyncio.Event()
        self.status: int | None = None
        self.retry: int | None = None
        self.heartbeats = 0
        self.head_id: str | None = None
        self.heartbeat = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> SseStream:
        self._task = asyncio.create_task(self._run())
        waiters = [asyncio.ensure_future(self.connected.wait()), asyncio.ensure_future(self.ended.wait())]
        done, pending = await asyncio.wait(waiters, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        # A waiter left pending would be destroyed pending, which asyncio logs as an error.
        for waiter in pending:
            waiter.cancel()
        assert done, "stream did not open"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        try:
            async with self._client.stream("GET", self._url, headers=self._headers) as response:
                self.status = response.status_code
                if response.status_code != 200:
                    await response.aread()
                    return
                fields: dict[str, str] = {}
                async for line in response.aiter_lines():
                    if line == "":
                        if fields.get("event") == "hello":
                            self.head_id = fields.get("id")
                        elif "data" in fields or "event" in fields:
                            await self.events.put(
                                SseEvent(
                                    fields.get("id", ""),
                                    fields.get("event", "message"),
                                    fields.get("data", ""),
                                )
                            )
                        fields = {}
                    elif line.startswith(":"):
                        if line == ": connected":
                            self.connected.set()
                        elif line == ": hb":
                            self.heartbeats += 1
                            self.heartbeat.set()
                    else:
                        name, _, value = line.partition(":")
                        value = value.removeprefix(" ")
                        if name == "retry":
                            self.retry = int(value)
                        elif name == "data" and "data" in fields:
                            fields["data"] += "\n" + value
                        else:
                            fields[name] = value
        except (httpx.HTTPError, OSError):
            pass
        finally:
            self.ended.set()

    async def next(self, timeout: float = 10) -> SseEvent:
        return await asyncio.wait_for(self.events.get(), timeout)

    async def take(self, count: int, timeout: float = 10) -> list[SseEvent]:
        return [await self.next(timeout) for _ in range(count)]

    def drain(self) -> list[SseEvent]:
        out = []
        while not self.events.empty():
            out.append(self.events.get_nowait())
        return out
