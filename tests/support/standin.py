"""What the local stand-ins of the CPaaS APIs share: a server on loopback, scripts, delivery.

A stand-in answers the create-call request as its provider documents it
(or refuses it as scripted), then plays the call: it posts the signed
webhooks the provider would to the gateway, in the provider's order, each
awaited, so a test can wait for the whole call to have been told.

The callback URLs the gateway gives are its public URL
(``tests.support.cpaas.PUBLIC_URL``); a stand-in signs them as given and
delivers them to the gateway's real loopback address, as a proxy in front
of the gateway would.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.cpaas import PUBLIC_URL

# How long a "slow" stand-in keeps the gateway waiting: past the route's timeout in the tests.
SLOW_SECONDS = 1.5


@dataclass(frozen=True)
class Script:
    """How one dialled number's call goes (keyed by the target number)."""

    user: str = "answer"  # "answer", "busy", "no-answer": the user's own phone
    target: str = "answer"  # "answer", "busy", "no-answer", "failed": the number dialled
    # Refuse the create call: a status, "invalid" (the provider's status for
    # a bad parameter), or "slow" (answer after the route's timeout).
    api: int | str | None = None
    connect_api: int | None = None  # refuse the second command (Telnyx's transfer)
    # The user leg's end delivered before the target leg's (the order a
    # provider does not promise either way).
    user_end_first: bool = False


@dataclass
class Delivery:
    url: str
    status: int
    body: Any


@dataclass
class StandIn:
    """A provider API on 127.0.0.1; subclasses add the routes and the play."""

    gateway_url: str = ""
    scripts: dict[str, Script] = field(default_factory=dict)
    requests: list[tuple[str, Any]] = field(default_factory=list)  # (path, parsed body) accepted
    delivered: list[Delivery] = field(default_factory=list)
    # Pacing of a played call: the time between two webhooks (a real call
    # takes seconds; a browser test gives the page time to create the engagement).
    step_seconds: float = 0.0
    _plays: set[asyncio.Task[None]] = field(default_factory=set)
    _http: httpx.AsyncClient | None = None

    # The status the provider documents for a request it cannot accept.
    invalid_status = 422

    def routes(self) -> list[Route]:
        raise NotImplementedError

    def script(self, target: str) -> Script:
        return self.scripts.get(target, Script())

    def play(self, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
        task = asyncio.create_task(run())
        self._plays.add(task)
        task.add_done_callback(self._plays.discard)

    async def idle(self, timeout: float = 10) -> None:
        """Every call played to its end (each webhook answered)."""
        async with asyncio.timeout(timeout):
            while self._plays:
                await asyncio.gather(*self._plays)

    async def deliver(self, url: str, body: bytes, headers: dict[str, str]) -> Delivery:
        """POST a signed webhook for ``url`` (a public URL) to the gateway."""
        assert url.startswith(PUBLIC_URL), url
        assert self._http is not None
        if self.step_seconds:
            await asyncio.sleep(self.step_seconds)
        parts = urlsplit(url)
        target = self.gateway_url + parts.path + (f"?{parts.query}" if parts.query else "")
        response = await self._http.post(target, content=body, headers=headers)
        try:
            answer: Any = response.json()
        except ValueError:
            answer = response.text
        delivery = Delivery(url, response.status_code, answer)
        self.delivered.append(delivery)
        return delivery

    async def scripted_refusal(self, script: Script, refuse: Callable[[int], Response]) -> Response | None:
        """The scripted answer in place of the provider's acceptance, if any."""
        if script.api == "slow":
            await asyncio.sleep(SLOW_SECONDS)
            return None
        if script.api == "invalid":
            return refuse(self.invalid_status)
        if isinstance(script.api, int):
            return refuse(script.api)
        return None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[str]:
        app = Starlette(routes=self.routes())
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("the stand-in stopped during start-up")
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        self._http = httpx.AsyncClient(timeout=10)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            for play in tuple(self._plays):
                play.cancel()
            await self._http.aclose()
            server.should_exit = True
            await asyncio.wait_for(task, 10)


async def json_body(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        return None


def json_response(body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status)
