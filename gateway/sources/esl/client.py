"""One tenant's event socket connection: auth, the events, the channels in progress, ``bgapi``.

The I/O edge of ``protocol`` (framing) and ``events`` (events to a
``CallBook``). A session (FreeSWITCH's inbound mode, mod_event_socket):

1. TCP to the switch; it sends ``auth/request``; ``auth <password>``;
2. ``event plain <the channel events>``;
3. ``api show channels as json``: the calls in progress; a channel known
   from an earlier session and not listed hung up meanwhile;
4. the events, in order, to the book and its signals to the tracker;
   ``api status`` every ``ping_seconds``: unanswered, the connection is dead.

Replies have no ids: commands are answered in order, so each waits in a
queue. ``bgapi`` jobs end with a ``BACKGROUND_JOB`` event naming the
``Job-UUID`` given. Whatever ends a session is one log line, then another
attempt after a back-off; the book outlives the sessions (a call's
``Channel-Call-UUID`` is its identity), so nothing is told twice.

A component (``start``/``stop``) per tenant, started and stopped by
``gateway.sources.pbxowner`` on the one instance that holds the tenant's
connection. An instance that does not hold it runs a ``bgapi originate`` on
a session of its own (``follow`` False: auth, ``event plain
BACKGROUND_JOB``, the job and its result, ``exit``; no channel events), since
only the holder follows the calls (docs/pbx.md#several-instances).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable

from gateway.sources.context import SourceContext
from gateway.sources.esl import events
from gateway.sources.esl.protocol import (
    EslParser,
    Event,
    Frame,
    Malformed,
    ProtocolError,
    command,
    event_of,
    reply_ok,
)
from gateway.sources.esl.settings import EslPbx
from gateway.sources.pbxlink import NotConnected, PbxLink, Refused, SharedLegs

log = logging.getLogger("gateway.esl")

JobResult = Callable[[str], Awaitable[None]]
_UUID = re.compile(r"[0-9A-Fa-f-]{1,64}")


class EslRefused(Refused):
    """The switch refused the password (or the gateway's address, by its ACL)."""


class EslConnection(PbxLink[EslPbx, str, str, Frame, Frame | Malformed, Event]):
    kind = "esl"
    peer = "the switch"
    log = log
    protocol_error = ProtocolError

    _dial_of = staticmethod(events.dial_of)
    _apply = staticmethod(events.apply)

    def __init__(
        self, pbx: EslPbx, context: SourceContext, follow: bool = True, legs: SharedLegs | None = None
    ) -> None:
        super().__init__(pbx, context, follow, legs)
        self._replies: deque[asyncio.Future[Frame]] = deque()
        self._jobs: dict[str, JobResult] = {}
        self._write_lock = asyncio.Lock()

    # -- commands ----------------------------------------------------------
    async def send(self, text: str, headers: dict[str, str] | None = None, timeout: float = 10.0) -> Frame:
        """A command and its reply (``command/reply`` or ``api/response``)."""
        writer = self._writer
        if writer is None:
            raise NotConnected(f"{self.name} is not connected")
        future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        async with self._write_lock:  # the order written is the order answered
            self._replies.append(future)
            writer.write(command(text, headers))
        await writer.drain()
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            # A late reply would answer the next command: start over.
            writer.close()
            raise
        finally:
            # Nobody waits for it any more: a late reply, or the session's end, finds it done
            # (it stays in line, so the replies after it still answer their own commands).
            future.cancel()

    async def bgapi(self, text: str, on_result: JobResult, timeout: float) -> Frame:
        """``bgapi <text>``; ``on_result`` gets the job's output (``+OK ...``/``-ERR ...``) later.

        On the holder's session; on a dial-only session of its own when
        another instance holds the tenant's connection.
        """
        return await self._dial(text, on_result, timeout)

    async def _place(self, text: str, on_result: JobResult, timeout: float) -> Frame:
        if not self.connected.is_set():
            raise NotConnected(f"{self.name} is not connected")
        job = str(uuid.uuid4())
        self._jobs[job] = on_result
        try:
            reply = await self.send(f"bgapi {text}", {"Job-UUID": job}, timeout)
        except BaseException:
            self._jobs.pop(job, None)
            raise
        if not reply_ok(reply):
            self._jobs.pop(job, None)
        return reply

    def _accepted(self, answer: Frame) -> bool:
        return reply_ok(answer)

    @staticmethod
    def _channel_of(event: Event) -> tuple[str, str] | None:
        channel = event.get("unique-id")
        call_id = event.get("channel-call-uuid") or channel  # as ``events`` reads it
        # The uuid goes into a command line: only what a uuid is made of.
        return (call_id, channel) if call_id and _UUID.fullmatch(channel) else None

    async def _hang_up(self, channel: str) -> str | None:
        answer = await self.send(f"api uuid_kill {channel}", timeout=self.pbx.connection.connect_seconds)
        body = answer.body.decode("utf-8", "replace").strip()
        return None if body.startswith("+OK") else body[:200] or "no reason given"

    async def _find_late(self) -> None:
        # Its first channel's uuid is the one the gateway chose.
        for dial in self._late_dials():
            self._hang_up_late(dial, events.dial_uuid(dial), unseen=True)

    async def _goodbye(self) -> None:
        await self.send("exit", timeout=1.0)

    # -- sessions ------------------------------------------------------------
    async def _drive(self) -> None:
        conn = self.pbx.connection
        await self._until_greeted()
        answer = await self.send(f"auth {self.pbx.password}", timeout=conn.connect_seconds)
        if not reply_ok(answer):
            raise EslRefused(f"the switch refused the password ({answer.get('reply-text')})")
        wanted = events.SUBSCRIBED if self.follow or self.watching else "BACKGROUND_JOB"
        subscribed = await self.send(f"event plain {wanted}", timeout=conn.connect_seconds)
        if not reply_ok(subscribed):
            raise EslRefused(f"the switch refused the events ({subscribed.get('reply-text')})")
        await self._up("authenticated")
        self.book.begin_resync()
        listed = await self.send("api show channels as json", timeout=conn.connect_seconds)
        await self._learn(listed)
        await self._find_late()
        while True:
            await asyncio.sleep(conn.ping_seconds)
            await self.send("api status", timeout=conn.ping_seconds)

    async def _learn(self, listed: Frame) -> None:
        now_ms = int(time.time() * 1000)
        body = listed.body.decode("utf-8", "replace")
        try:
            signals = events.listed(self.book, body, self.context.directory(), now_ms)
        except events.BadEvent as exc:
            await self._not_learnt(str(exc))
        else:
            await self._learnt(signals, now_ms)

    def _framer(self) -> Callable[[bytes], list[Frame | Malformed]]:
        return EslParser().feed

    async def _dispatch(self, frame: Frame | Malformed) -> None:
        if isinstance(frame, Malformed):
            self._skip(f"a malformed frame ({frame.reason})")
            return
        kind = frame.content_type
        if kind == "auth/request":
            self._greeted.set()
        elif kind in ("command/reply", "api/response"):
            if self._replies:
                future = self._replies.popleft()
                if not future.done():
                    future.set_result(frame)
        elif kind == "text/disconnect-notice":
            raise EOFError("the switch said goodbye")
        elif kind == "text/rude-rejection":
            # Instead of auth/request: the address is outside apply-inbound-acl.
            why = frame.body[:200].decode("utf-8", "replace").strip()
            raise EslRefused(f"the switch refused the gateway's address ({why})")
        elif kind == "text/event-plain":
            await self._event(frame)

    async def _event(self, frame: Frame) -> None:
        event = event_of(frame)
        if isinstance(event, Malformed):
            self._skip(f"a malformed event ({event.reason})")
            return
        if event.name == "BACKGROUND_JOB":
            on_result = self._jobs.pop(event.get("job-uuid"), None)
            if on_result is not None:
                await on_result(event.body.strip())
            return
        await self._follow(event)

    def _drop(self) -> None:
        super()._drop()
        self._lost(self._replies)
        self._replies.clear()
        self._jobs.clear()
