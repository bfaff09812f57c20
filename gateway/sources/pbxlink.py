"""What the PBX management connections (AMI, event socket) share at the I/O edge.

- ``PbxLink``: one tenant's connection as a component: the sessions one
  after another with a back-off between, start/stop, the progress waited
  on, a dial placed on a dial-only session of its own when another instance
  holds the connection; in a session, the reader, the PBX's greeting
  waited for, the calls in progress learnt (or not), the events of calls
  followed, what is not understood skipped. ``ami.client`` and
  ``esl.client`` give the protocol's parts (the framing and what each
  frame means, the login, the request that dials);
- ``Backoff``: the waits between connection attempts, doubling from the
  minimum to the maximum, back to the minimum once a session got going;
- dials given up on (``give_up``): the PBX did not accept one in time, so
  the user was told it failed; a call of it that comes later (any event of
  a channel of its call, also one listed on connect) is hung up, channel by
  channel, on whichever session sees it, before the number is called;
- ``SignalPipe``: a book's signals to the tracker in order, a dialled call
  joined by its key, and the signals the broker could not take during an
  outage kept (up to ``MAX_UNDELIVERED``) and sent first next time. Sending
  one again is harmless: the model emits each SDK event once.

  With ``legs`` (the instances' shared call claims), every leg that rings
  is recorded under the tenant's connection until it ends, so that the
  next holder of the connection, after its list of calls in progress,
  ends the legs that ended while nobody held it (``end_unseen``).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from gateway.model import Direction, Phase, Signal
from gateway.sources.context import SourceContext
from gateway.sources.pbxcalls import BadEvent, CallBook
from gateway.sources.pbxsettings import Connection
from gateway.tracker import BrokerUnavailable, CallTracker
from gateway.users.directory import Directory

MAX_UNDELIVERED = 1000
# What a session's reader asks the socket for at a time.
READ_BYTES = 65536
# An open leg's record outlives its last claim by this much (a call longer is
# still ended by its own events; only one ending in a handover needs it).
LEG_RECORD_SECONDS = 86_400
# How long a call of a dial given up on is still hung up when it comes (a
# PBX that late is stuck; the ids are never reused, so keeping them is harmless).
LATE_CALL_SECONDS = 3600.0


@dataclass
class LateDial:
    """A dial given up on: until when a call of it is hung up, and how that went per channel."""

    until: float
    # The channels of its call hung up, being so, or that the PBX will never let us.
    tried: set[str] = field(default_factory=set)


class SharedLegs(Protocol):
    """The call claims of ``gateway.sources.sip.coordination.Coordination``, used for PBX legs."""

    async def claim_call(self, scope: str, key: str, proposed: str, ttl_seconds: int) -> str: ...

    async def end_call(self, scope: str, key: str, call_id: str) -> None: ...

    async def open_calls(self, scope: str) -> dict[str, str]: ...


class Backoff:
    def __init__(self, low: float, high: float) -> None:
        self.low, self.high = low, high
        self._next = low

    def next(self) -> float:
        wait, self._next = self._next, min(self.high, self._next * 2)
        return wait

    def reset(self) -> None:
        self._next = self.low


class SignalPipe:
    def __init__(
        self, tracker: CallTracker, book: CallBook, log: logging.Logger, legs: SharedLegs | None = None
    ) -> None:
        self.tracker = tracker
        self.book = book
        self.log = log
        self.legs = legs
        self.scope = f"pbx:{book.source}:{book.tenant}"
        self._waiting: list[Signal] = []

    async def end_unseen(self, at_ms: int) -> None:
        """End the legs recorded as open that this book does not know (after its list of calls)."""
        if self.legs is None:
            return
        try:
            recorded = await self.legs.open_calls(self.scope)
        except BrokerUnavailable as exc:
            self.log.warning("legs left open by another instance unknown: %s", exc)
            return
        ended = []
        for key, direction in sorted(recorded.items()):
            call_id, _, user_id = key.rpartition(" ")
            if not call_id or direction not in ("inbound", "outbound"):
                continue
            if not self.book.open_leg(call_id, user_id):
                signal = Signal(self.book.source, call_id, user_id, Direction(direction), Phase.ENDED, at_ms)
                ended.append(signal)
        if ended:
            self.log.info("%d calls ended while no instance was connected", len(ended))
            await self.send(ended)

    async def _record(self, signal: Signal) -> None:
        if self.legs is None or signal.phase is Phase.ANSWERED:
            return
        key, value = f"{signal.call_id} {signal.user_id}", signal.direction.value
        try:
            if signal.phase is Phase.RINGING:
                await self.legs.claim_call(self.scope, key, value, LEG_RECORD_SECONDS)
            else:
                await self.legs.end_call(self.scope, key, value)
        except BrokerUnavailable as exc:
            self.log.warning("leg of call %s not recorded: %s", signal.call_id, exc)

    async def send(self, signals: list[Signal]) -> None:
        queue, self._waiting = self._waiting + signals, []
        for index, signal in enumerate(queue):
            try:
                # Recorded before the user can see the ring, after they saw the end.
                if signal.phase is Phase.RINGING:
                    await self._record(signal)
                await self.tracker.observe(signal, dial_key=self.book.dial_key(signal.call_id))
                if signal.phase is Phase.ENDED:
                    await self._record(signal)
            except BrokerUnavailable as exc:
                left = queue[index:]
                if len(left) > MAX_UNDELIVERED:
                    self.log.error(
                        "broker down too long: dropping %d old signals", len(left) - MAX_UNDELIVERED
                    )
                    left = left[-MAX_UNDELIVERED:]
                self._waiting = left
                self.log.warning("broker unavailable, %d signals kept for later: %s", len(left), exc)
                return


class NotConnected(Exception):
    """No session with the PBX right now."""


class Refused(Exception):
    """The PBX refused the gateway (its login or password, or the gateway's address)."""


class LinkSettings(Protocol):
    @property
    def tenant(self) -> int: ...

    @property
    def connection(self) -> Connection: ...

    @property
    def ring_seconds(self) -> float: ...


SettingsT = TypeVar("SettingsT", bound=LinkSettings)
RequestT = TypeVar("RequestT")
ResultT = TypeVar("ResultT")
AnswerT = TypeVar("AnswerT")
FrameT = TypeVar("FrameT")
EventT = TypeVar("EventT")


class PbxLink(abc.ABC, Generic[SettingsT, RequestT, ResultT, AnswerT, FrameT, EventT]):
    """One tenant's management connection; subclasses give the protocol's parts.

    A dial is a ``RequestT`` answered at once (``AnswerT``) and its result
    (``ResultT``) given to ``on_result`` later. The PBX's bytes are framed
    into ``FrameT``s; an ``EventT`` is an event of a call.
    """

    kind: ClassVar[str]  # "ami", "esl": the source, in names
    peer: ClassVar[str]  # "the PBX", in log lines
    log: ClassVar[logging.Logger]
    protocol_error: ClassVar[type[Exception]]
    # How long a dial-only session waits for the dial's result beyond the ring time.
    result_grace_seconds: ClassVar[float] = 10.0

    def __init__(
        self, pbx: SettingsT, context: SourceContext, follow: bool = True, legs: SharedLegs | None = None
    ) -> None:
        self.pbx = pbx
        self.context = context
        # False: a dial-only session, which neither learns nor follows the calls.
        self.follow = follow
        self._apart: set[asyncio.Task[None]] = set()
        self.book = CallBook(self.kind, pbx.tenant, self._dial_of)
        # legs: the legs in progress recorded for the next holder (docs/pbx.md#several-instances).
        self.pipe = SignalPipe(context.tracker, self.book, self.log, legs)
        self.backoff = Backoff(pbx.connection.retry_min_seconds, pbx.connection.retry_max_seconds)
        self.sessions = 0  # logins so far
        self.connected = asyncio.Event()
        # The PBX's first words this session (AMI's banner, the event socket's auth/request).
        self._greeted = asyncio.Event()
        self.malformed = 0
        self._synced_sessions = 0
        self.failed = 0  # sessions that ended (or never began)
        self._progress = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None
        # Dials given up on, by dial id.
        self._late: dict[str, LateDial] = {}
        self._hangups: set[asyncio.Task[None]] = set()
        # A dial-only session that only hangs up late calls (``_watch_late``).
        self.watching = False

    @property
    def name(self) -> str:
        return f"{self.kind} {self.pbx.tenant} ({self.pbx.connection.host}:{self.pbx.connection.port})"

    @property
    def label(self) -> str:
        return f"{self.kind} {self.pbx.tenant}"

    @property
    def lease_name(self) -> str:
        """What the instances hold a lease on (``gateway.sources.pbxowner``)."""
        return f"pbx:{self.kind}:{self.pbx.tenant}"

    @property
    def held(self) -> bool:
        """This instance holds the tenant's connection (it may be reconnecting)."""
        return self._task is not None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"{self.kind}-{self.pbx.tenant}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        for pending in [task, *self._apart, *self._hangups]:
            if pending is not None:
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pending
        self._drop()

    async def until_failed(self, sessions: int) -> None:
        """Until ``sessions`` sessions (or attempts) have ended."""
        async with self._progress:
            await self._progress.wait_for(lambda: self.failed >= sessions)

    async def until_synced(self, sessions: int) -> None:
        """Until the ``sessions``-th session has learnt the calls in progress."""
        async with self._progress:
            await self._progress.wait_for(lambda: self._synced_sessions >= sessions)

    async def _synced(self) -> None:
        async with self._progress:
            self._synced_sessions = self.sessions
            self._progress.notify_all()

    # -- the protocol's parts ---------------------------------------------------
    @staticmethod
    @abc.abstractmethod
    def _dial_of(call_id: str) -> str | None:
        """The gateway's dial id a call id of this PBX carries (``CallBook.dial_of``)."""

    @staticmethod
    @abc.abstractmethod
    def _apply(book: CallBook, event: EventT, directory: Directory, now_ms: int, /) -> list[Signal]:
        """The signals an event of a call makes (the ``events`` module's); ``BadEvent`` for a broken one."""

    @abc.abstractmethod
    async def _place(
        self, request: RequestT, on_result: Callable[[ResultT], Awaitable[None]], timeout: float
    ) -> AnswerT:
        """The dial on this connection's session."""

    @abc.abstractmethod
    def _accepted(self, answer: AnswerT) -> bool: ...

    @staticmethod
    @abc.abstractmethod
    def _channel_of(event: EventT, /) -> tuple[str, str] | None:
        """The call id of an event's channel and what hangs that channel up (``_hang_up``)."""

    @abc.abstractmethod
    async def _hang_up(self, channel: str) -> str | None:
        """Hang one channel up; why the PBX would not (None: it did)."""

    def _never_allowed(self, why: str) -> str | None:
        """What the PBX's refusal ``why`` says this connection lacks for good (None: worth trying again)."""
        return None

    @abc.abstractmethod
    async def _find_late(self) -> None:
        """Hang up the calls of dials given up on that began while no session here listened."""

    @abc.abstractmethod
    async def _goodbye(self) -> None:
        """Ends a dial-only session politely (it may fail: the session ends anyway)."""

    def _ssl(self) -> ssl.SSLContext | None:
        return None

    @abc.abstractmethod
    def _framer(self) -> Callable[[bytes], list[FrameT]]:
        """A new session's framing: the frames in each piece of the PBX's bytes, in order."""

    @abc.abstractmethod
    async def _dispatch(self, frame: FrameT) -> None: ...

    @abc.abstractmethod
    async def _drive(self) -> None:
        """The session's requests: the login, the calls in progress, the pings."""

    # -- what the sessions share -------------------------------------------------
    async def _read(self, reader: asyncio.StreamReader) -> None:
        frames = self._framer()
        while True:
            data = await reader.read(READ_BYTES)
            if not data:
                return
            for frame in frames(data):
                await self._dispatch(frame)

    async def _follow(self, event: EventT) -> None:
        """An event of a call: to the book, its signals to the tracker (a dial-only session leaves it)."""
        found = self._channel_of(event)
        if found is not None:
            call_id, channel = found
            dial = self._dial_of(call_id)
            if dial is not None:
                self._hang_up_late(dial, channel)
        if not self.follow:
            return
        try:
            signals = self._apply(self.book, event, self.context.directory(), int(time.time() * 1000))
        except BadEvent as exc:
            self._skip(f"an event: {exc}")
            return
        if signals:
            await self.pipe.send(signals)

    def _skip(self, what: str) -> None:
        """Something the PBX sent is not understood: counted, logged, and the session goes on."""
        self.malformed += 1
        self.log.warning("%s: skipped %s", self.name, what)

    async def _until_greeted(self) -> None:
        async with asyncio.timeout(self.pbx.connection.connect_seconds):  # not wait_for: outbox/worker.py
            await self._greeted.wait()

    async def _learnt(self, listed: list[Signal], now_ms: int) -> None:
        """The calls in progress were listed (``listed``: their signals).

        A call the book knew from an earlier session and the list lacks
        ended meanwhile; so did a leg another holder recorded and nobody
        saw end. The signals kept during a broker outage go first.
        """
        signals = listed + self.book.end_resync(now_ms, self.context.directory())
        self.log.info("%s: %d channels in progress", self.name, len(self.book))
        await self.pipe.send(signals)
        await self.pipe.end_unseen(now_ms)
        await self._synced()

    async def _not_learnt(self, why: str) -> None:
        """The calls in progress could not be listed: the book keeps what it knew, none ended."""
        self.book.end_resync_abandoned()
        self.log.warning("%s: calls in progress unknown: %s", self.name, why)
        await self._synced()

    # -- dials -------------------------------------------------------------------
    async def _dial(
        self, request: RequestT, on_result: Callable[[ResultT], Awaitable[None]], timeout: float
    ) -> AnswerT:
        if self.follow and not self.held:
            return await self._dial_apart(request, on_result, timeout)
        return await self._place(request, on_result, timeout)

    def give_up(self, dial_id: str) -> None:
        """The PBX did not accept dial ``dial_id`` in time: a call of it that comes later is hung up."""
        now = time.monotonic()
        # In place: the dial-only sessions of this link share the dict.
        for dial in [dial for dial, late in self._late.items() if late.until <= now]:
            del self._late[dial]
        self._late[dial_id] = LateDial(now + LATE_CALL_SECONDS)

    def _late_dials(self) -> list[str]:
        now = time.monotonic()
        return [dial for dial, late in self._late.items() if late.until > now]

    def _hang_up_late(self, dial_id: str, channel: str, *, unseen: bool = False) -> None:
        """Hang ``channel`` up if it is of a dial given up on (once, unless the PBX would not).

        ``unseen``: a channel no event showed, which may not exist; trying it
        leaves the channel's own events free to try again.
        """
        late = self._late.get(dial_id)
        if late is None or late.until <= time.monotonic() or channel in late.tried:
            return
        if not unseen:
            late.tried.add(channel)

        async def hang_up() -> None:
            what = f"{self.name}: the late call of dial {dial_id}: {channel}"
            try:
                # An event may come in with the login's answer, before the session is up.
                async with asyncio.timeout(self.pbx.connection.connect_seconds):
                    await self.connected.wait()
                why = await self._hang_up(channel)
            except (NotConnected, TimeoutError, OSError) as exc:
                if not unseen:
                    late.tried.discard(channel)  # the channel's next event tries again
                self.log.warning("%s not hung up: %s: %s", what, type(exc).__name__, exc)
                return
            if why is None:
                late.tried.add(channel)
                self.log.info("%s hung up", what)
            elif not unseen:
                missing = self._never_allowed(why)
                if missing is None:
                    late.tried.discard(channel)  # the channel's next event tries again
                # Gone already, most often: hanging up one channel of a call ends the others.
                gone = "no such channel" in why.lower()
                level = logging.INFO if gone else logging.WARNING
                # Not allowed: the channel is not tried again, so this is its one line.
                lacking = f": {missing}" if missing else ""
                self.log.log(level, "%s not hung up by %s (%s)%s", what, self.peer, why, lacking)

        task = asyncio.create_task(hang_up(), name=f"{self.kind}-{self.pbx.tenant}-hangup")
        self._hangups.add(task)
        task.add_done_callback(self._hangups.discard)

    def _watch_late(self) -> None:
        """A dial-only session's dial went unanswered, and no session here follows the calls.

        Another dial-only session, as long as the user's phone could ring,
        hangs up the call the PBX may still place (``give_up``).
        """
        watcher = type(self)(self.pbx, self.context, follow=False)
        watcher._late = self._late
        watcher.watching = True

        session = asyncio.create_task(watcher._session(), name=f"{self.kind}-{self.pbx.tenant}-late")
        self._keep_apart(watcher, session, lambda: session, "late-wait")

    def _keep_apart(
        self,
        apart: PbxLink[SettingsT, RequestT, ResultT, AnswerT, FrameT, EventT],
        session: asyncio.Task[None],
        until: Callable[[], Awaitable[object]],
        name: str,
    ) -> None:
        """Keep a dial-only session until ``until()`` is done, at most as long as the phone rings; log off."""

        async def keep() -> None:
            waiting = asyncio.ensure_future(until())
            try:
                await asyncio.wait([waiting], timeout=self.pbx.ring_seconds + self.result_grace_seconds)
                with contextlib.suppress(NotConnected, TimeoutError, OSError):
                    await apart._goodbye()
            finally:
                waiting.cancel()
                session.cancel()
                with contextlib.suppress(BaseException):
                    await session
                await apart.stop()

        task = asyncio.create_task(keep(), name=f"{self.kind}-{self.pbx.tenant}-{name}")
        self._apart.add(task)
        task.add_done_callback(self._apart.discard)

    async def _dial_apart(
        self, request: RequestT, on_result: Callable[[ResultT], Awaitable[None]], timeout: float
    ) -> AnswerT:
        apart = type(self)(self.pbx, self.context, follow=False)
        apart._late = self._late
        finished = asyncio.Event()

        async def result(output: ResultT) -> None:
            try:
                await on_result(output)
            finally:
                finished.set()

        session = asyncio.create_task(apart._session(), name=f"{self.kind}-{self.pbx.tenant}-dial")
        try:
            connected = asyncio.ensure_future(apart.connected.wait())
            await asyncio.wait([connected, session], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            connected.cancel()
            if not apart.connected.is_set():
                if session.done() and not session.cancelled() and session.exception() is not None:
                    self.log.warning("%s: dial-only session failed: %s", self.name, session.exception())
                raise NotConnected(f"{self.name}: no session for the dial")
            answer = await apart._place(request, result, timeout)
        except BaseException as exc:
            session.cancel()
            with contextlib.suppress(BaseException):
                await session
            apart._drop()
            if isinstance(exc, TimeoutError):
                self._watch_late()
            raise
        if not self._accepted(answer):
            finished.set()

        # Until the dial's result (the user's phone rang out or answered).
        self._keep_apart(apart, session, finished.wait, "dial-wait")
        return answer

    # -- sessions ----------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Refused as exc:
                self.log.error("%s: %s", self.name, exc)
            except ssl.SSLCertVerificationError as exc:
                # Like a refused login, it does not heal by itself: the operator must act.
                self.log.error("%s: %s's certificate failed verification: %s", self.name, self.peer, exc)
            except (OSError, EOFError, self.protocol_error, TimeoutError, NotConnected) as exc:
                self.log.warning("%s: connection lost: %s: %s", self.name, type(exc).__name__, exc)
            except Exception:
                self.log.exception("%s: session failed", self.name)
            finally:
                self._drop()
            if self._stopping():
                raise asyncio.CancelledError
            async with self._progress:
                self.failed += 1
                self._progress.notify_all()
            wait = self.backoff.next()
            self.log.info("%s: connecting again in %.2f s", self.name, wait)
            await asyncio.sleep(wait)

    @staticmethod
    def _stopping() -> bool:
        # Python 3.11's wait_for loses a cancel that comes as what it waits
        # for fails (a refused login, a certificate refused): the attempt's
        # error arrives instead, and without this the loop would go on
        # connecting, and ``stop`` wait for it forever.
        task = asyncio.current_task()
        return task is not None and task.cancelling() > 0

    async def _session(self) -> None:
        conn = self.pbx.connection
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(conn.host, conn.port, ssl=self._ssl()), conn.connect_seconds
        )
        self._writer = writer
        self._greeted.clear()
        tasks = [
            asyncio.create_task(self._read(reader), name=f"{self.kind}-{self.pbx.tenant}-read"),
            asyncio.create_task(self._drive(), name=f"{self.kind}-{self.pbx.tenant}-drive"),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if tasks[1] not in done:
                # The last words before a close (a refused login) say more than the close.
                await asyncio.wait([tasks[1]], timeout=0.1)
            for task in reversed(tasks):
                if task.done():
                    task.result()
            raise EOFError(f"{self.peer} closed the connection")
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(BaseException):
                    await task

    async def _up(self, how: str) -> None:
        """The session is logged in (``how``); a dial-only one stays so until its dial is done."""
        self.backoff.reset()
        self.sessions += 1
        self.connected.set()
        if not self.follow:
            self.log.info(
                "%s: %s to %s", self.name, how, "watch for a late call" if self.watching else "place a dial"
            )
            if self.watching:
                await self._find_late()
            await asyncio.Event().wait()  # until the dial is done with the session
        self.log.info("%s: %s", self.name, how)

    def _lost(self, waiting: Iterable[asyncio.Future[Any]]) -> None:
        """The answers ``waiting`` will not come: each waiter learns that the connection was lost."""
        for future in waiting:
            if not future.done():
                future.set_exception(NotConnected(f"{self.name}: connection lost"))

    def _drop(self) -> None:
        self.connected.clear()
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
