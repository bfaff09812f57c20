"""An asyncio fake PBX for the SIP tests, written apart from the gateway's SIP code.

It answers SUBSCRIBE (challenging with digest first), sends NOTIFYs that a
test composes (and can duplicate, reorder, drop or retransmit), and sends
PUBLISH requests. UDP or TCP, on 127.0.0.1. It parses SIP with its own few
lines, so a bug in the gateway's parser cannot hide itself here.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

DIALOG_INFO_NS = "urn:ietf:params:xml:ns:dialog-info"
_AUTH_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|([^,\s]+))')
_COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact", "l": "content-length"}


@dataclass
class Message:
    first: str
    headers: list[tuple[str, str]]
    body: bytes

    def get(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name.lower():
                return value
        return None

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name.lower()]

    @property
    def method(self) -> str:
        return self.first.split(" ", 1)[0]

    @property
    def status(self) -> int:
        return int(self.first.split(" ")[1]) if self.first.startswith("SIP/2.0") else 0

    @property
    def branch(self) -> str:
        match = re.search(r"branch=([^;,\s]+)", self.get("via") or "")
        return match.group(1) if match else ""

    @property
    def call_id(self) -> str:
        return self.get("call-id") or ""


def parse(data: bytes) -> Message:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        key = name.strip().lower()
        headers.append((_COMPACT.get(key, key), value.strip()))
    return Message(lines[0], headers, body)


def tag_of(value: str) -> str | None:
    match = re.search(r";\s*tag=([^;>\s]+)", value)
    return match.group(1) if match else None


def uri_in(value: str) -> str:
    match = re.search(r"<([^>]+)>", value)
    return match.group(1) if match else value.split(";")[0].strip()


def dialog_info(
    entity: str, version: int, dialogs: Iterable[dict[str, Any]] = (), state: str = "full"
) -> bytes:
    """An RFC 4235 document; each dialog: id, state, and optionally direction,
    call_id, event, code, remote (URI), remote_name, local (URI)."""
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<dialog-info xmlns="{DIALOG_INFO_NS}" version="{version}" state="{state}" entity="{entity}">',
    ]
    for d in dialogs:
        attrs = f'id="{d["id"]}"'
        if "call_id" in d:
            attrs += f' call-id="{d["call_id"]}"'
        if "direction" in d:
            attrs += f' direction="{d["direction"]}"'
        parts.append(f"<dialog {attrs}>")
        state_attrs = "".join(f' {k}="{d[k]}"' for k in ("event", "code") if k in d)
        parts.append(f"<state{state_attrs}>{d['state']}</state>")
        if "remote" in d:
            name = f' display="{d["remote_name"]}"' if "remote_name" in d else ""
            parts.append(f"<remote><identity{name}>{d['remote']}</identity></remote>")
        if "local" in d:
            parts.append(f"<local><identity>{d['local']}</identity></local>")
        parts.append("</dialog>")
    parts.append("</dialog-info>")
    return "\n".join(parts).encode()


def digest_response(
    algorithm: str, username: str, realm: str, password: str, method: str, uri: str, params: dict[str, str]
) -> str:
    def h(text: str) -> str:
        return hashlib.new("sha256" if algorithm == "SHA-256" else "md5", text.encode()).hexdigest()

    ha1 = h(f"{username}:{realm}:{password}")
    ha2 = h(f"{method}:{uri}")
    if params.get("qop") == "auth":
        return h(f"{ha1}:{params['nonce']}:{params['nc']}:{params['cnonce']}:auth:{ha2}")
    return h(f"{ha1}:{params['nonce']}:{ha2}")


@dataclass(frozen=True)
class Accepted:
    """One SUBSCRIBE the PBX accepted: when (monotonic), for whom, which dialog, its Expires, from where."""

    at: float
    user: str
    call_id: str
    expires: int
    contact: tuple[str, int]


@dataclass
class FakeSubscription:
    """What the PBX knows of one gateway subscription."""

    user: str
    call_id: str
    remote_tag: str  # the gateway's From tag
    local_tag: str
    aor: str
    contact: tuple[str, int]
    expires: int
    writer: asyncio.StreamWriter | None = None
    cseq: int = 0
    version: int = 0
    subscribes: list[Message] = field(default_factory=list)
    accepted_at: list[float] = field(default_factory=list)  # monotonic, one per accepted SUBSCRIBE


class FakePbx:
    def __init__(
        self,
        transport: str = "udp",
        *,
        username: str = "gateway",
        password: str = "pbx-password",
        realm: str = "pbx.test",
        algorithm: str = "MD5",
        challenge: bool = True,
    ) -> None:
        self.transport = transport
        self.username = username
        self.password = password
        self.realm = realm
        self.algorithm = algorithm
        self.challenge = challenge
        self.port = 0
        self.subscriptions: dict[str, FakeSubscription] = {}
        self.requests: list[Message] = []
        self.request_times: list[float] = []  # monotonic arrival of each of self.requests
        # When set: the body of a NOTIFY sent right after each accepted SUBSCRIBE,
        # as a real notifier does (RFC 6665 §4.2.1); its answers land in notify_answers.
        self.notify_on_subscribe: Callable[[FakeSubscription], bytes] | None = None
        self.notify_answers: list[Message] = []
        self._notify_answered: asyncio.Queue[Message] = asyncio.Queue()
        # When set: every response this PBX sends passes through it (to mangle answers).
        self.mangle_response: Callable[[bytes], bytes] | None = None
        self.challenges_sent = 0
        self.refuse: dict[str, int] = {}  # user -> status to answer the next SUBSCRIBE with
        self.auth_ok: list[Message] = []
        self.accepted: list[Accepted] = []  # every SUBSCRIBE answered 200, in order
        self.silent = False  # ignore every request, as a PBX that is down
        self._seen: asyncio.Queue[Message] = asyncio.Queue()
        self._nonces: set[str] = set()
        self._events: dict[tuple[str, str], asyncio.Queue[FakeSubscription]] = {}
        self._pending: dict[str, asyncio.Future[Message]] = {}
        self._udp: asyncio.DatagramTransport | None = None
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._cseq = itertools.count(1)
        # The final answer to each SUBSCRIBE transaction, by branch: a
        # retransmission gets it again and is not a new subscription, as a
        # real UAS's transaction layer does (RFC 3261 17.2.3).
        self._answered: dict[str, tuple[bytes, tuple[str, int]]] = {}

    # --- life ---

    async def start(self) -> FakePbx:
        loop = asyncio.get_running_loop()
        if self.transport == "udp":
            pbx = self

            class Protocol(asyncio.DatagramProtocol):
                def datagram_received(self, data: bytes, addr: Any) -> None:
                    pbx._on_data(data, (addr[0], addr[1]), None)

            transport, _ = await loop.create_datagram_endpoint(Protocol, local_addr=("127.0.0.1", 0))
            self._udp = transport
            self.port = transport.get_extra_info("sockname")[1]
        else:
            self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> FakePbx:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def pbx_settings(self, **extra: Any) -> dict[str, Any]:
        return {
            "address": f"127.0.0.1:{self.port}",
            "transport": self.transport,
            "domain": "pbx.test",
            "username": self.username,
            "password": self.password,
            **extra,
        }

    def restart(self) -> None:
        """Forget every subscription, as a PBX does when it restarts."""
        self.subscriptions.clear()

    def drop_connections(self) -> None:
        for writer in list(self._writers):
            writer.close()

    # --- awaiting what the gateway does ---

    def _queue(self, kind: str, user: str) -> asyncio.Queue[FakeSubscription]:
        return self._events.setdefault((kind, user), asyncio.Queue())

    async def subscribed(self, user: str, timeout: float = 10) -> FakeSubscription:
        """The next subscription (new or refreshed) accepted for ``user``."""
        return await asyncio.wait_for(self._queue("subscribed", user).get(), timeout)

    async def request_seen(self, user: str, timeout: float = 10) -> Message:
        """The next request (new or retransmitted) addressed to ``user``."""
        while True:
            message = await asyncio.wait_for(self._seen.get(), timeout)
            if f":{user}@" in message.first:
                return message

    def forget_seen(self) -> None:
        """Drop what waits in ``subscribed`` and ``unsubscribed``: the next one awaited is a new one."""
        for queue in self._events.values():
            while not queue.empty():
                queue.get_nowait()

    async def unsubscribed(self, user: str, timeout: float = 10) -> FakeSubscription:
        return await asyncio.wait_for(self._queue("unsubscribed", user).get(), timeout)

    # --- wire ---

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._read_stream(reader, writer)

    async def _read_stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        peer = writer.get_extra_info("peername")
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                match = re.search(rb"(?im)^(?:content-length|l)\s*:\s*(\d+)", head)
                body = await reader.readexactly(int(match.group(1))) if match else b""
                self._on_data(head + body, (peer[0], peer[1]), writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    def send(self, data: bytes, target: tuple[str, int], writer: asyncio.StreamWriter | None) -> None:
        if writer is not None:
            writer.write(data)
        else:
            assert self._udp is not None
            self._udp.sendto(data, target)

    def _on_data(self, data: bytes, source: tuple[str, int], writer: asyncio.StreamWriter | None) -> None:
        message = parse(data)
        if message.first.startswith("SIP/2.0"):
            future = self._pending.get(message.branch)
            if future is not None and not future.done() and message.status >= 200:
                future.set_result(message)
            return
        self.requests.append(message)
        self.request_times.append(time.monotonic())
        self._seen.put_nowait(message)
        if message.method == "SUBSCRIBE" and not self.silent:
            answered = self._answered.get(message.branch) if message.branch else None
            if answered is not None:
                self.send(answered[0], answered[1], writer)
                return
            self._on_subscribe(message, source, writer)

    def _reply(
        self,
        request: Message,
        status: int,
        reason: str,
        source: tuple[str, int],
        writer: asyncio.StreamWriter | None,
        extra: list[tuple[str, str]] = (),  # type: ignore[assignment]
        to_tag: str | None = None,
    ) -> None:
        via = request.get("via") or ""
        via_match = re.match(r"SIP/2.0/\w+\s+([^;:\s]+)(?::(\d+))?", via)
        target = source
        if via_match and "rport" not in via:
            target = (source[0], int(via_match.group(2) or 5060))
        to = request.get("to") or ""
        if to_tag and tag_of(to) is None:
            to += f";tag={to_tag}"
        lines = [f"SIP/2.0 {status} {reason}"]
        lines += [f"Via: {v}" for v in request.all("via")]
        lines += [f"From: {request.get('from')}", f"To: {to}", f"Call-ID: {request.call_id}"]
        lines += [f"CSeq: {request.get('cseq')}"]
        lines += [f"{k}: {v}" for k, v in extra]
        lines += ["Content-Length: 0", "", ""]
        data = "\r\n".join(lines).encode()
        if self.mangle_response is not None:
            data = self.mangle_response(data)
        if request.method == "SUBSCRIBE" and request.branch and status >= 200:
            self._answered[request.branch] = (data, target)
        self.send(data, target, writer)

    def _authorised(self, request: Message) -> bool:
        header = request.get("authorization")
        if not header:
            return False
        params = {
            m.group(1): m.group(2) if m.group(2) is not None else m.group(3)
            for m in _AUTH_PARAM.finditer(header)
        }
        if params.get("nonce") not in self._nonces or params.get("username") != self.username:
            return False
        expected = digest_response(
            self.algorithm,
            self.username,
            self.realm,
            self.password,
            "SUBSCRIBE",
            params.get("uri", ""),
            params,
        )
        return params.get("response") == expected and params.get("algorithm", "MD5") == self.algorithm

    def _on_subscribe(
        self, request: Message, source: tuple[str, int], writer: asyncio.StreamWriter | None
    ) -> None:
        user = re.sub(r"^sips?:", "", request.first.split(" ")[1]).split("@")[0]
        to_tag = tag_of(request.get("to") or "")
        existing = next((s for s in self.subscriptions.values() if s.call_id == request.call_id), None)
        if to_tag is not None and existing is None:
            self._reply(request, 481, "Subscription Does Not Exist", source, writer)
            return
        if self.challenge and not self._authorised(request):
            nonce = secrets.token_hex(8)
            self._nonces.add(nonce)
            self.challenges_sent += 1
            challenge = (
                f'Digest realm="{self.realm}", nonce="{nonce}", qop="auth", algorithm={self.algorithm}'
            )
            self._reply(request, 401, "Unauthorized", source, writer, [("WWW-Authenticate", challenge)])
            return
        if existing is not None:
            user = existing.user
        refusal = self.refuse.pop(user, None)
        if refusal is not None:
            self._reply(request, refusal, "Refused", source, writer)
            return
        self.auth_ok.append(request)
        expires = int(request.get("expires") or "600")
        contact = uri_in(request.get("contact") or "")
        match = re.match(r"sip:[^@]+@([^:;>]+):(\d+)", contact)
        contact_addr = (match.group(1), int(match.group(2))) if match else source
        if existing is None:
            sub = FakeSubscription(
                user=user,
                call_id=request.call_id,
                remote_tag=tag_of(request.get("from") or "") or "",
                local_tag=secrets.token_hex(4),
                aor=uri_in(request.get("to") or ""),
                contact=contact_addr,
                expires=expires,
                writer=writer,
            )
        else:
            sub = existing
            sub.expires = expires
        sub.subscribes.append(request)
        sub.accepted_at.append(time.monotonic())
        self.accepted.append(Accepted(time.monotonic(), sub.user, request.call_id, expires, contact_addr))
        self._reply(
            request,
            200,
            "OK",
            source,
            writer,
            [("Expires", str(expires)), ("Contact", f"<sip:{user}@127.0.0.1:{self.port}>")],
            to_tag=sub.local_tag,
        )
        if expires == 0:
            self.subscriptions.pop(user, None)
            self._queue("unsubscribed", sub.user).put_nowait(sub)
            return
        self.subscriptions[user] = sub
        self._queue("subscribed", sub.user).put_nowait(sub)
        if self.notify_on_subscribe is not None:
            branch, data = self.notify_bytes(sub, self.notify_on_subscribe(sub))
            task = asyncio.get_running_loop().create_task(self._notify_quietly(sub, branch, data))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _notify_quietly(self, sub: FakeSubscription, branch: str, data: bytes) -> None:
        with contextlib.suppress(TimeoutError):
            answer = await self.transact(sub, branch, data)
            self.notify_answers.append(answer)
            self._notify_answered.put_nowait(answer)

    async def auto_notify_answered(self, timeout: float = 10) -> Message:
        """The answer to the next NOTIFY sent by ``notify_on_subscribe``."""
        return await asyncio.wait_for(self._notify_answered.get(), timeout)

    # --- NOTIFY ---

    def notify_bytes(
        self,
        sub: FakeSubscription,
        body: bytes,
        *,
        state: str = "active;expires=600",
        branch: str | None = None,
        event: str = "dialog",
    ) -> tuple[str, bytes]:
        sub.cseq += 1
        branch = branch or "z9hG4bK" + secrets.token_hex(8)
        lines = [
            f"NOTIFY sip:gateway@{sub.contact[0]}:{sub.contact[1]} SIP/2.0",
            f"Via: SIP/2.0/{self.transport.upper()} 127.0.0.1:{self.port};branch={branch};rport",
            "Max-Forwards: 70",
            f"From: <{sub.aor}>;tag={sub.local_tag}",
            f"To: <sip:gateway@pbx.test>;tag={sub.remote_tag}",
            f"Call-ID: {sub.call_id}",
            f"CSeq: {sub.cseq} NOTIFY",
            f"Event: {event}",
            f"Subscription-State: {state}",
            "Content-Type: application/dialog-info+xml",
            f"Content-Length: {len(body)}",
            "",
            "",
        ]
        return branch, "\r\n".join(lines).encode() + body

    def document(
        self, sub: FakeSubscription, dialogs: Iterable[dict[str, Any]], state: str = "full"
    ) -> bytes:
        """The subscription's next dialog-info document (version + 1)."""
        sub.version += 1
        return dialog_info(sub.aor, sub.version, dialogs, state)

    def send_raw(self, sub: FakeSubscription, data: bytes) -> None:
        self.send(data, sub.contact, sub.writer)

    async def transact(self, sub: FakeSubscription, branch: str, data: bytes, timeout: float = 5) -> Message:
        """Send a request and await its final response (retransmitting over UDP)."""
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[branch] = future
        try:
            self.send_raw(sub, data)
            return await asyncio.wait_for(future, timeout)
        finally:
            self._pending.pop(branch, None)

    async def notify(self, user: str, dialogs: Iterable[dict[str, Any]] = (), **kw: Any) -> Message:
        """A full-state NOTIFY with the next version, answered."""
        sub = self.subscriptions[user]
        body = self.document(sub, dialogs, kw.pop("doc_state", "full"))
        branch, data = self.notify_bytes(sub, body, **kw)
        return await self.transact(sub, branch, data)

    async def response_to(self, branch: str, timeout: float = 5) -> Message:
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[branch] = future
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            self._pending.pop(branch, None)

    def expect(self, branch: str) -> asyncio.Future[Message]:
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[branch] = future
        return future


class Publisher:
    """Sends PUBLISH as Kamailio's pua_dialoginfo does, over UDP or TCP, and awaits the answers."""

    def __init__(self, pbx: FakePbx, gateway: tuple[str, int]) -> None:
        self.pbx = pbx
        self.gateway = gateway
        self._writer: asyncio.StreamWriter | None = None

    async def _connection(self) -> asyncio.StreamWriter | None:
        if self.pbx.transport != "tcp":
            return None
        if self._writer is None:
            reader, writer = await asyncio.open_connection(*self.gateway)
            self._writer = writer
            task = asyncio.create_task(self.pbx._read_stream(reader, writer))
            self.pbx._tasks.add(task)
        return self._writer

    def request(
        self,
        aor: str,
        body: bytes = b"",
        *,
        etag: str | None = None,
        expires: int | None = 3600,
        event: str = "dialog",
        content_type: str = "application/dialog-info+xml",
        uri: str | None = None,
    ) -> tuple[str, bytes]:
        branch = "z9hG4bK" + secrets.token_hex(8)
        lines = [
            f"PUBLISH {uri or aor} SIP/2.0",
            f"Via: SIP/2.0/{self.pbx.transport.upper()} 127.0.0.1:{self.pbx.port};branch={branch};rport",
            "Max-Forwards: 70",
            f"From: <{aor}>;tag={secrets.token_hex(4)}",
            f"To: <{aor}>",
            f"Call-ID: {secrets.token_hex(8)}@pbx.test",
            f"CSeq: {next(self.pbx._cseq)} PUBLISH",
            f"Event: {event}",
        ]
        if etag is not None:
            lines.append(f"SIP-If-Match: {etag}")
        if expires is not None:
            lines.append(f"Expires: {expires}")
        if body:
            lines.append(f"Content-Type: {content_type}")
        lines += [f"Content-Length: {len(body)}", "", ""]
        return branch, "\r\n".join(lines).encode() + body

    async def send(self, branch: str, data: bytes, timeout: float = 5) -> Message:
        future = self.pbx.expect(branch)
        try:
            writer = await self._connection()
            self.pbx.send(data, self.gateway, writer)
            return await asyncio.wait_for(future, timeout)
        finally:
            self.pbx._pending.pop(branch, None)

    async def publish(self, aor: str, body: bytes = b"", **kw: Any) -> Message:
        return await self.send(*self.request(aor, body, **kw))
