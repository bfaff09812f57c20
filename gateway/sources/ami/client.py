"""One tenant's AMI connection: connect, log in, learn the calls in progress, follow the events.

The I/O edge of ``protocol`` (framing), ``events`` (events to a ``CallBook``)
and ``gateway.sources.pbxcalls`` (calls to signals). A session:

1. TCP (TLS when ``tls``) to the PBX, the banner;
2. ``Login`` (after a ``Challenge``: an MD5 of the challenge and the secret,
   so the secret never crosses the wire; or plain), ``Events: call``;
3. ``CoreShowChannels``: the calls in progress; a channel known from an
   earlier session and not listed hung up meanwhile;
4. the events, in order, to the book and its signals to the tracker;
   a ``Ping`` every ``ping_seconds``: unanswered, the connection is dead.

Whatever ends a session (the PBX restarting, a refused login, garbage past
the limits, a dead peer) is one log line, then the next attempt after a
back-off. The book outlives the sessions, so a call seen again after a
reconnect is the same call (its ``Linkedid``) and nothing is told twice.

This is a component (``start``/``stop``) per tenant, started and stopped
by ``gateway.sources.pbxowner`` on the one instance that holds the tenant's
connection. An instance that does not hold it places an ``Originate`` on a
session of its own (``follow`` False: login, the action, its
``OriginateResponse``, logout; no events followed), since only the holder
follows the calls (docs/pbx.md#several-instances).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import ssl
import time
from collections.abc import Awaitable, Callable

from gateway.sources.ami import events
from gateway.sources.ami.protocol import (
    AmiParser,
    Malformed,
    Message,
    ProtocolError,
    action,
    challenge_key,
    is_success,
)
from gateway.sources.ami.settings import AmiPbx
from gateway.sources.context import SourceContext
from gateway.sources.pbxlink import NotConnected, PbxLink, Refused, SharedLegs

log = logging.getLogger("gateway.ami")


OriginateResult = Callable[[Message], Awaitable[None]]


class AmiRefused(Refused):
    """The PBX refused the login (wrong user or secret, or an address it does not allow)."""


class AmiConnection(PbxLink[AmiPbx, dict[str, str], Message, Message, Message | Malformed, Message]):
    kind = "ami"
    peer = "the PBX"
    log = log
    protocol_error = ProtocolError

    _dial_of = staticmethod(events.dial_of)
    _apply = staticmethod(events.apply)

    def __init__(
        self, pbx: AmiPbx, context: SourceContext, follow: bool = True, legs: SharedLegs | None = None
    ) -> None:
        super().__init__(pbx, context, follow, legs)
        self._pending: dict[str, asyncio.Future[Message]] = {}
        self._originates: dict[str, OriginateResult] = {}
        self._ids = itertools.count(1)

    # -- actions -----------------------------------------------------------
    async def request(
        self, name: str, fields: dict[str, str] | None = None, timeout: float = 10.0
    ) -> Message:
        """Send an action and wait for its ``Response``."""
        writer = self._writer
        if writer is None or (not self.connected.is_set() and name not in ("Challenge", "Login")):
            raise NotConnected(f"{self.name} is not connected")
        action_id = f"gw-{next(self._ids)}"
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[action_id] = future
        try:
            writer.write(action(name, action_id, fields))
            await writer.drain()
            return await asyncio.wait_for(future, timeout)
        finally:
            self._pending.pop(action_id, None)

    async def originate(self, fields: dict[str, str], on_result: OriginateResult, timeout: float) -> Message:
        """``Originate`` with ``Async: true``; ``on_result`` gets its ``OriginateResponse`` event later.

        On the holder's session; on a dial-only session of its own when
        another instance holds the tenant's connection.
        """
        return await self._dial(fields, on_result, timeout)

    async def _place(self, fields: dict[str, str], on_result: OriginateResult, timeout: float) -> Message:
        writer = self._writer
        if writer is None or not self.connected.is_set():
            raise NotConnected(f"{self.name} is not connected")
        action_id = f"gw-{next(self._ids)}"
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[action_id] = future
        self._originates[action_id] = on_result
        try:
            writer.write(action("Originate", action_id, {**fields, "Async": "true"}))
            await writer.drain()
            answer = await asyncio.wait_for(future, timeout)
        except BaseException:
            self._originates.pop(action_id, None)
            raise
        finally:
            self._pending.pop(action_id, None)
        if not is_success(answer):
            self._originates.pop(action_id, None)
        return answer

    def _accepted(self, answer: Message) -> bool:
        return is_success(answer)

    @staticmethod
    def _channel_of(message: Message) -> tuple[str, str] | None:
        call_id, channel = message.get("linkedid"), message.get("channel")
        return (call_id, channel) if call_id and channel else None

    async def _hang_up(self, channel: str) -> str | None:
        # Cause 16, normal clearing: as if the user had hung up.
        answer = await self.request(
            "Hangup", {"Channel": channel, "Cause": "16"}, self.pbx.connection.connect_seconds
        )
        return None if is_success(answer) else answer.get("message") or "no reason given"

    def _never_allowed(self, why: str) -> str | None:
        # Asterisk's answer to an action the manager user may not send.
        if why.strip().lower() == "permission denied":
            return f"the manager user {self.pbx.username!r} lacks write = call (manager.conf)"
        return None

    async def _find_late(self) -> None:
        # Each channel listed (CoreShowChannel) is looked at as any event of a call.
        await self.request("CoreShowChannels", timeout=self.pbx.connection.connect_seconds)

    async def _goodbye(self) -> None:
        await self.request("Logoff", timeout=1.0)

    # -- sessions ------------------------------------------------------------
    def _ssl(self) -> ssl.SSLContext | None:
        if not self.pbx.tls:
            return None
        context = ssl.create_default_context()
        if not self.pbx.tls_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    async def _drive(self) -> None:
        conn = self.pbx.connection
        await self._until_greeted()
        await self._login()
        await self._up(f"logged in as {self.pbx.username}")
        self.book.begin_resync()
        listed = await self.request("CoreShowChannels", timeout=conn.connect_seconds)
        if not is_success(listed):
            await self._not_learnt(f"CoreShowChannels refused ({listed.get('message')})")
        while True:
            await asyncio.sleep(conn.ping_seconds)
            await self.request("Ping", timeout=conn.ping_seconds)

    async def _login(self) -> None:
        timeout = self.pbx.connection.connect_seconds
        fields = {"Username": self.pbx.username, "Events": "call"}
        if self.pbx.auth == "md5":
            challenge = await self.request("Challenge", {"AuthType": "MD5"}, timeout)
            if not is_success(challenge) or not challenge.get("challenge"):
                raise AmiRefused(f"the PBX gave no MD5 challenge ({challenge.get('message')})")
            fields |= {"AuthType": "MD5", "Key": challenge_key(challenge.get("challenge"), self.pbx.secret)}
        else:
            fields["Secret"] = self.pbx.secret
        answer = await self.request("Login", fields, timeout)
        if not is_success(answer):
            raise AmiRefused(f"the PBX refused the login of {self.pbx.username!r}: {answer.get('message')}")

    def _framer(self) -> Callable[[bytes], list[Message | Malformed]]:
        parser = AmiParser()

        def frames(data: bytes) -> list[Message | Malformed]:
            messages = parser.feed(data)
            if parser.banner is not None:
                self._greeted.set()
            return messages

        return frames

    async def _dispatch(self, message: Message | Malformed) -> None:
        if isinstance(message, Malformed):
            self._skip(f"a malformed message ({message.reason})")
            return
        # OriginateResponse carries a Response field too: an Event is an event.
        if message.response and not message.event:
            future = self._pending.get(message.action_id)
            if future is not None and not future.done():
                future.set_result(message)
            return
        kind = message.event.lower()
        if kind == "coreshowchannelscomplete":
            if self.follow:
                await self._learnt([], int(time.time() * 1000))
        elif kind == "originateresponse":
            on_result = self._originates.pop(message.action_id, None)
            if on_result is not None:
                await on_result(message)
        else:
            await self._follow(message)

    def _drop(self) -> None:
        super()._drop()
        self._lost(self._pending.values())
        self._pending.clear()
        self._originates.clear()
