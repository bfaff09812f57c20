"""A page's stream as the browser keeps it, and a sender that retries: for tests where Redis goes away.

``Page`` keeps one user's stream open across cuts and 503s, resuming with
the last id it saw (as EventSource does with ``Last-Event-ID``), and
collects the SDK events; ``send`` posts a signal again after a 503, as
Twilio or a PBX script does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.harness import Client
from tests.support.sse import SseEvent

# A sender retries a 503 (the broker is away or recovering) as Twilio or a
# PBX script does, after a short pause; this bounds how long it keeps trying.
_RETRY_SECONDS = 20.0


@dataclass
class Page:
    """One user's page: a stream kept open across cuts, resumed with the last id it saw."""

    gateway: Client
    token: str
    events: list[SseEvent] = field(default_factory=list)
    gaps: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    opened: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        last: str | None = None
        while True:
            async with self.gateway.stream(self.token, last_event_id=last) as stream:
                if stream.status != 200:
                    # Refused while Redis is away: the browser retries after `retry:`.
                    await asyncio.sleep(0.2)
                    continue
                last = last or stream.head_id
                self.opened.set()
                while not (stream.ended.is_set() and stream.events.empty()):
                    getter = asyncio.ensure_future(stream.events.get())
                    ender = asyncio.ensure_future(stream.ended.wait())
                    await asyncio.wait({getter, ender}, return_when=asyncio.FIRST_COMPLETED)
                    ender.cancel()
                    if not getter.done():
                        getter.cancel()
                        continue
                    event = getter.result()
                    if event.event == "gap":
                        self.gaps += 1
                    elif event.event == "sdk":
                        self.events.append(event)
                    if event.id:
                        last = event.id
                    self.changed.set()

    def calls(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for event in self.events:
            body = event.json
            out.setdefault(body["externalCallId"], []).append(body)
        return out

    async def until_call(self, external_call_id: str, seconds: float = 30) -> None:
        """Until an event of the call came (a call sent last: then everything before it came too)."""
        await self.until(lambda p: external_call_id in p.calls(), seconds)

    async def until(self, done: Callable[[Page], bool], seconds: float = 30) -> None:
        async with asyncio.timeout(seconds):
            while not done(self):
                self.changed.clear()
                await self.changed.wait()


@contextlib.asynccontextmanager
async def pages(*opened: Page) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(page.run()) for page in opened]
    try:
        async with asyncio.timeout(10):
            for page in opened:
                await page.opened.wait()
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await task


async def send(gateway: Client, body: dict[str, Any]) -> None:
    """Post a signal as a retrying sender does: again after a 503, until it is taken."""
    async with asyncio.timeout(_RETRY_SECONDS):
        while True:
            with contextlib.suppress(httpx.TransportError):
                response = await gateway.ingest(body)
                if response.status_code == 202:
                    return
                assert response.status_code == 503, response.text
            await asyncio.sleep(0.1)
