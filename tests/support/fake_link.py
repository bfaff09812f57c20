"""What the PBX management stand-ins (fake_ami.py, fake_esl.py) share: a server on 127.0.0.1.

``FakeLink`` is the server's life and its sessions, the part that does not
depend on the protocol (as ``gateway.sources.pbxlink`` is for the clients):

- ``start``/``stop`` (the PBX goes down: the listener closes and every
  session with it), ``drop`` (every session cut: a network failure, or a
  reload of the manager), ``running`` around a test;
- one session per connection: the protocol's greeting, then its requests
  one after another, each ending with ``request_end`` and answered by the
  protocol before the next is read;
- ``until``: a test waits for a condition, checked after each request
  answered and each session's end;
- ``send_raw``: bytes to the sessions (all, or those ``to`` picks);
- ``spawn``: the call a test plays for a dial, in the background, cancelled
  when the server stops running; ``played`` counts those played to their end;
- ``slow``: an event; until it is set, each dial request waits unanswered
  (a PBX slower than the gateway waits for), and is answered then.
  when the server stops running;
- the logins (AMI's ``Login``, the event socket's ``auth``): ``logins``
  let in so far, ``refused_logins``, ``logged_in`` now and
  ``most_logged_in`` at once, so a test can tell that a fleet of gateways
  keeps one session with the PBX.

A stand-in gives its protocol's parts: ``_session`` (its state of a
session), ``_greeting`` and ``_request`` (the answer to one request).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Self, TypeVar


@dataclass
class LinkSession:
    """One connection to the stand-in; a protocol adds its state."""

    writer: asyncio.StreamWriter
    logged_in: bool = False


SessionT = TypeVar("SessionT", bound=LinkSession)


@dataclass
class FakeLink(abc.ABC, Generic[SessionT]):
    host: str = "127.0.0.1"
    port: int = 0
    _sessions: list[SessionT] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _progress: asyncio.Condition = field(default_factory=asyncio.Condition)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    # Dial requests wait for this before they are answered (None: answered at once).
    slow: asyncio.Event | None = None
    played: int = 0  # the calls ``spawn`` played to their end
    logins: int = 0
    refused_logins: int = 0
    most_logged_in: int = 0

    # What ends a request on the wire (a blank line).
    request_end: ClassVar[bytes]

    # -- the protocol's parts ------------------------------------------------------
    @abc.abstractmethod
    def _session(self, writer: asyncio.StreamWriter) -> SessionT: ...

    @abc.abstractmethod
    def _greeting(self) -> bytes:
        """What a new connection is sent first."""

    @abc.abstractmethod
    async def _request(self, session: SessionT, block: bytes) -> None:
        """Answer one request (``block`` without its ``request_end``)."""

    def _ssl(self) -> ssl.SSLContext | None:
        return None

    def _turned_away(self) -> bool:
        """A new connection is closed after its greeting (which said why)."""
        return False

    # -- life ----------------------------------------------------------------------
    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port, ssl=self._ssl())
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """The PBX goes down: the listener closes and every session with it."""
        if self._server is not None:
            self._server.close()
        await self.drop()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def drop(self) -> None:
        """Every session is cut (a network failure, or a reload of the manager)."""
        for session in list(self._sessions):
            session.writer.close()
            with contextlib.suppress(Exception):
                await session.writer.wait_closed()
        self._sessions.clear()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Self]:
        await self.start()
        try:
            yield self
        finally:
            for task in list(self._tasks):
                task.cancel()
            await self.stop()

    async def until(self, done: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until ``done()`` holds; checked after every request answered and every session's end."""

        async def wait() -> None:
            async with self._progress:
                await self._progress.wait_for(done)

        await asyncio.wait_for(wait(), timeout)

    def spawn(self, play: Coroutine[Any, Any, None]) -> None:
        """Play a call in the background (cancelled when the stand-in stops running)."""

        async def run() -> None:
            await play
            self.played += 1
            await self._moved()

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def send_raw(self, data: bytes, to: Callable[[SessionT], bool] | None = None) -> None:
        """``data`` to every session (``to``: those it picks), in the order they connected."""
        for session in list(self._sessions):
            if to is not None and not to(session):
                continue
            session.writer.write(data)
            with contextlib.suppress(ConnectionError):
                await session.writer.drain()

    # -- sessions ------------------------------------------------------------------
    @property
    def logged_in(self) -> int:
        return sum(1 for session in self._sessions if session.logged_in)

    def _let_in(self, session: SessionT) -> None:
        session.logged_in = True
        self.logins += 1
        self.most_logged_in = max(self.most_logged_in, self.logged_in)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = self._session(writer)
        self._sessions.append(session)
        writer.write(self._greeting())
        try:
            if self._turned_away():
                await writer.drain()
                return
            while True:
                block = await reader.readuntil(self.request_end)
                try:
                    await self._request(session, block[: -len(self.request_end)])
                finally:
                    await self._moved()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            if session in self._sessions:
                self._sessions.remove(session)
            writer.close()
            await self._moved()  # a test may wait for a session to end

    async def _dial_request(self) -> None:
        """A dial request arrived: held while ``slow`` is not released."""
        if self.slow is not None:
            await self.slow.wait()

    async def _moved(self) -> None:
        async with self._progress:
            self._progress.notify_all()

    async def _write(self, session: SessionT, data: bytes) -> None:
        session.writer.write(data)
        await session.writer.drain()
