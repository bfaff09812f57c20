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
import io
import math
import re
import struct
import wave
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
    # The number dialled: "answer", "busy", "no-answer", "failed", or
    # "canceled": it rings until the user hangs up.
    target: str = "answer"
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
    body: Any  # the gateway's answer
    # What was posted, to post it again (a provider's redelivery).
    sent: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


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
    # Recordings the provider keeps (media path -> bytes), served as its media
    # URLs are (``media_response``); ``honour_ranges`` False plays a server
    # that ignores Range and always sends the whole file. Each media request's
    # headers are kept, to check what the gateway sent.
    media: dict[str, bytes] = field(default_factory=dict)
    honour_ranges: bool = True
    media_requests: list[dict[str, str]] = field(default_factory=list)
    # Answer a create-call request only once the leg it created has been
    # played (each of its webhooks answered): a provider's webhooks may reach
    # the gateway before its answer.
    report_first: bool = False
    # The provider's ids of the calls the gateway asked it to hang up, in order,
    # once per request; a call hung up while the user's phone rings ends there.
    hung_up: list[str] = field(default_factory=list)
    # Every hang-up finds its call over already (it ended by itself, or another
    # instance hung it up first) and is answered so; the call ends all the same.
    over_before_hang_up: bool = False
    _plays: set[asyncio.Task[None]] = field(default_factory=set)
    # Requests being answered now (a slow one, and the call it places then, count for ``idle``).
    _answering: int = 0
    _answered: asyncio.Condition = field(default_factory=asyncio.Condition)
    _http: httpx.AsyncClient | None = None

    # The status the provider documents for a request it cannot accept.
    invalid_status = 422

    def routes(self) -> list[Route]:
        raise NotImplementedError

    def over_already(self, call: str) -> bool:
        """Whether the hang-up of ``call`` just recorded in ``hung_up`` found it over (hung up before)."""
        return self.over_before_hang_up or self.hung_up.count(call) > 1

    def script(self, target: str) -> Script:
        return self.scripts.get(target, Script())

    def play(self, run: Callable[[], Coroutine[Any, Any, None]]) -> asyncio.Task[None]:
        task = asyncio.create_task(run())
        self._plays.add(task)
        task.add_done_callback(self._plays.discard)
        return task

    async def place(self, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Play the leg a create-call request made (before answering it: see ``report_first``)."""
        task = self.play(run)
        if self.report_first:
            await task

    async def idle(self, timeout: float = 10) -> None:
        """Every request answered and every call played to its end (each webhook answered).

        A request answered after the gateway gave up on it counts too: the
        provider places that call all the same.
        """
        async with asyncio.timeout(timeout):
            while self._plays or self._answering:
                if self._plays:
                    await asyncio.gather(*self._plays)
                else:
                    async with self._answered:
                        await self._answered.wait_for(lambda: not self._answering)

    def _counted(self, app: Starlette) -> Any:
        """``app``, its HTTP requests counted while they are answered (for ``idle``)."""

        async def counted(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            self._answering += 1
            try:
                await app(scope, receive, send)
            finally:
                self._answering -= 1
                async with self._answered:
                    self._answered.notify_all()

        return counted

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
        delivery = Delivery(url, response.status_code, answer, body, headers)
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
        app = self._counted(Starlette(routes=self.routes()))
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


def recording_wav(seconds: float = 0.5, rate: int = 8000) -> bytes:
    """A two-channel 16-bit PCM WAV, caller on channel 1 and recipient on 2 (HubSpot's layout)."""
    frames = bytearray()
    for n in range(int(seconds * rate)):
        caller = int(8000 * math.sin(2 * math.pi * 440 * n / rate))
        recipient = int(8000 * math.sin(2 * math.pi * 660 * n / rate))
        frames += struct.pack("<hh", caller, recipient)
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(bytes(frames))
    return out.getvalue()


_RANGE = re.compile(r"^bytes=([0-9]*)-([0-9]*)\Z")


def media_response(request: Request, data: bytes, content_type: str, honour_ranges: bool = True) -> Response:
    """The file as a media server answers (RFC 9110 section 14): one byte range as 206, 416, or 200."""
    found = _RANGE.match(request.headers.get("range", "")) if honour_ranges else None
    size = len(data)
    if found is None or found.group(0) == "bytes=-":
        return Response(data, 200, {"accept-ranges": "bytes"}, media_type=content_type)
    first, last = found.group(1), found.group(2)
    if first == "":
        start, end = max(0, size - int(last)), size - 1
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        return Response(b"", 416, {"content-range": f"bytes */{size}"})
    headers = {"accept-ranges": "bytes", "content-range": f"bytes {start}-{end}/{size}"}
    return Response(data[start : end + 1], 206, headers, media_type=content_type)
