"""UDP and TCP SIP transports: sockets, framing and caps, nothing else.

Ours rather than the library's: the library's TCP framer waits for CRLF CRLF
forever on bare-LF input and routes TCP responses by Via port (lost without
``rport``), and its dispatcher drops a malformed request silently where SIP
wants a 400. Here a response to a TCP request always goes back on the
connection it came in on (RFC 3261 §18.2.2).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from gateway.parsing import parse_decimal
from gateway.sources.sip.adapter import Request, Response, serialize, split_head
from gateway.sources.sip.message_rules import (
    Limits,
    Rejected,
    decode,
    over_caps,
    response_target,
    salvage_headers,
    salvaged_response,
    salvaged_target,
    scan_head,
    stamp_via,
)

log = logging.getLogger("gateway.sip")

MAX_CONNECTIONS = 1024


@dataclass(frozen=True)
class ListenAddress:
    kind: str  # "udp" | "tcp"
    host: str
    port: int

    @property
    def family(self) -> int:
        return socket.AF_INET6 if ":" in self.host else socket.AF_INET


@dataclass
class Inbound:
    """One message as it arrived: where from, and the way back."""

    message: Request | Response
    kind: str
    source: tuple[str, int]
    udp: UdpEndpoint | None = None
    tcp: TcpConnection | None = None


MessageHandler = Callable[[Inbound], None]
RejectHandler = Callable[[str, str], None]  # (kind, reason)
LostHandler = Callable[[tuple[str, int]], None]


def family_of(host: str) -> int:
    try:
        return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        return socket.AF_INET


class UdpEndpoint(asyncio.DatagramProtocol):
    def __init__(self, owner: SipTransport, address: ListenAddress) -> None:
        self.owner = owner
        self.address = address
        self.transport: asyncio.DatagramTransport | None = None
        self.bound: tuple[str, int] = (address.host, address.port)
        # Done once the socket is closed (a transport's close() takes a loop turn).
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's datagram transport does not subclass asyncio's: no isinstance check.
        self.transport = cast(asyncio.DatagramTransport, transport)
        sock = transport.get_extra_info("sockname")
        self.bound = (str(sock[0]), int(sock[1]))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.owner.on_datagram(self, data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like: the peer is gone, transactions time out.
        log.debug("sip udp error: %s", exc)

    def sendto(self, data: bytes, target: tuple[str, int]) -> None:
        if self.transport is not None:
            self.transport.sendto(data, target)

    def answer(self, data: bytes, target: tuple[str, int] | None, source: tuple[str, int]) -> bool:
        """Send an answer; never raises: one that cannot go anywhere is a log line."""
        if target is None or not 0 < target[1] < 65536:
            # Checked here, not left to sendto: asyncio's datagram transport
            # closes itself (the listener is gone) on an out-of-range port.
            log.warning("sip udp %s:%d: answer dropped: the top Via names no usable port", *source)
            return False
        try:
            self.sendto(data, target)
        except (OSError, OverflowError, ValueError, TypeError) as exc:
            log.warning("sip udp %s:%d: answer to %s:%s not sent (%s)", *source, *target, exc)
            return False
        return True


class TcpConnection:
    def __init__(
        self,
        owner: SipTransport,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        accepted: bool = False,
    ) -> None:
        self.owner = owner
        # Only connections peers opened to us idle out; ours to a PBX live as long as we need them.
        self.accepted = accepted
        self.reader = reader
        self.writer = writer
        peer = writer.get_extra_info("peername")
        self.peer: tuple[str, int] = (str(peer[0]), int(peer[1])) if peer else ("", 0)
        self.task: asyncio.Task[None] | None = None

    def send(self, data: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(data)

    async def run(self) -> None:
        try:
            while True:
                data = await self._read_one()
                if data is None:
                    return
                self.owner.on_stream_message(self, data)
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self.writer.close()
            self.owner.on_connection_closed(self)

    async def _read_one(self) -> bytes | None:
        """One message by Content-Length framing; ``None`` ends the connection.

        An accepted connection may idle between messages for ``tcp_idle_seconds``
        (PBXes keep them open and ping); a message, once its first byte is in,
        must arrive whole within ``limits.tcp_message_seconds``: a peer trickling
        bytes, even of its first line, does not hold a connection forever.
        """
        limits = self.owner.limits
        first = await self._await_message()
        if first is None:
            return None
        buf = bytearray(first)
        try:
            async with asyncio.timeout(limits.tcp_message_seconds):
                while not (buf.endswith(b"\n\n") or buf.endswith(b"\r\n\r\n")):
                    if len(buf) > limits.max_message_bytes:
                        self._refuse(bytes(buf), 413, "Message Too Large")
                        return None
                    line = await self.reader.readline()
                    if not line:
                        return None
                    buf += line
                head = bytes(buf)
                over = over_caps((split_head(head) or (head, b""))[0], limits)
                if over is not None:
                    # The Content-Length may be past what scan_head reads: the
                    # body would be read as the next message.
                    self._refuse(head, 400, over)
                    return None
                declared = scan_head(head, limits).get("content-length", ["0"])
                length = parse_decimal(declared[0], max_digits=10) if len(declared) == 1 else None
                if length is None:
                    # Framing is lost: nothing after this on the stream can be trusted.
                    self._refuse(head, 400, "Bad Content-Length")
                    return None
                if len(head) + length > limits.max_message_bytes:
                    self._refuse(head, 413, "Message Too Large")
                    return None
                body = await self.reader.readexactly(length) if length else b""
        except TimeoutError:
            self.owner.count_reject("tcp", "Incomplete Message")
            log.warning("sip tcp %s:%d: message not complete in time, closing", *self.peer)
            return None
        except ValueError:  # a line beyond the stream reader's own limit
            self._refuse(bytes(buf), 413, "Message Too Large")
            return None
        return head + body

    async def _await_message(self) -> bytes | None:
        """The first byte of the next message, after any keep-alive CRLFs.

        A CRLF CRLF "ping" is answered with a CRLF "pong" (RFC 5626 §3.5.1);
        a lone CRLF (a pong, or padding) is skipped.
        """
        idle = self.owner.limits.tcp_idle_seconds if self.accepted else None
        line_ends = 0
        while True:
            try:
                async with asyncio.timeout(idle):
                    byte = await self.reader.read(1)
            except TimeoutError:
                self.owner.count_reject("tcp", "Idle")
                log.info("sip tcp %s:%d: idle for %.0f s, closing", *self.peer, idle or 0)
                return None
            if not byte:
                return None
            if byte == b"\r":
                continue
            if byte != b"\n":
                return byte
            line_ends += 1
            if line_ends == 2:
                self.send(b"\r\n")
                line_ends = 0

    def _refuse(self, head: bytes, status: int, reason: str) -> None:
        headers = salvage_headers(head, self.owner.limits) if not head.startswith(b"SIP/") else []
        self.owner.count_reject("tcp", reason)
        if headers:
            self.send(salvaged_response(Rejected(status, reason, headers)))
        log.warning("sip tcp %s:%d: %s, closing connection", *self.peer, reason)


class SipTransport:
    """All listeners of one gateway process, and its outgoing TCP connections."""

    def __init__(
        self,
        listen: list[ListenAddress],
        limits: Limits,
        on_message: MessageHandler,
        on_reject: RejectHandler | None = None,
        on_lost: LostHandler | None = None,
    ) -> None:
        self.listen = listen
        self.limits = limits
        self.on_message = on_message
        self.on_reject = on_reject
        self.on_lost = on_lost
        self.udp: list[UdpEndpoint] = []
        self.tcp_servers: list[tuple[ListenAddress, asyncio.Server, tuple[str, int]]] = []
        self.connections: dict[tuple[str, int], TcpConnection] = {}
        self._connecting: dict[tuple[str, int], asyncio.Future[TcpConnection]] = {}
        # Set by ``share`` in a worker of ``gateway serve --workers``.
        self._own_port: int | None = None

    def share(self, own_port: int = 0) -> None:
        """Bind the listen addresses with SO_REUSEPORT, shared with the other workers, and
        before them listeners of this worker's own on ``own_port`` (0: any) per kind and host.

        The first listener of a kind is the one requests go out from and Via and Contact
        name, so the answers and in-dialog requests of what this worker sends (SUBSCRIBE
        and its NOTIFYs, click-to-dial's INVITE) come back to it, not to whichever worker
        the kernel picks on the shared port (docs/operations.md#workers).
        """
        self._own_port = own_port

    async def start(self) -> None:
        try:
            await self._open()
        except BaseException:
            # A listen address that cannot be bound: the ones opened before it
            # are closed, not left holding their ports.
            await self.stop()
            raise
        for endpoint in self.udp:
            log.info("sip listening on udp %s:%d", *endpoint.bound)
        for _, _, bound in self.tcp_servers:
            log.info("sip listening on tcp %s:%d", *bound)

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        listen = [(address, self._own_port is not None) for address in self.listen]
        if self._own_port is not None:
            own = {(a.kind, a.host): ListenAddress(a.kind, a.host, self._own_port) for a in self.listen}
            listen = [(address, False) for address in own.values()] + listen
        for address, shared in listen:
            if address.kind == "udp":
                _, endpoint = await loop.create_datagram_endpoint(
                    lambda a=address: UdpEndpoint(self, a),  # type: ignore[misc]
                    local_addr=(address.host, address.port),
                    family=address.family,
                    reuse_port=shared or None,
                )
                assert isinstance(endpoint, UdpEndpoint)
                self.udp.append(endpoint)
            else:
                server = await asyncio.start_server(
                    self._accept,
                    host=address.host,
                    port=address.port,
                    family=address.family,
                    reuse_port=shared or None,
                )
                sock = server.sockets[0].getsockname()
                self.tcp_servers.append((address, server, (str(sock[0]), int(sock[1]))))

    async def stop(self) -> None:
        for endpoint in self.udp:
            if endpoint.transport is not None:
                endpoint.transport.close()
        if self.udp:
            await asyncio.wait([endpoint.closed for endpoint in self.udp], timeout=1)
        for _, server, _ in self.tcp_servers:
            server.close()
        for connection in list(self.connections.values()):
            connection.writer.close()
            if connection.task is not None:
                connection.task.cancel()
        tasks = {c.task for c in self.connections.values() if c.task is not None}
        tasks.discard(asyncio.current_task())
        if tasks:
            await asyncio.wait(tasks, timeout=1)
        for _, server, _ in self.tcp_servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1)
        self.udp.clear()
        self.tcp_servers.clear()
        self.connections.clear()

    @property
    def ready(self) -> bool:
        return bool(self.udp or self.tcp_servers) and all(e.transport is not None for e in self.udp)

    def local(self, kind: str, family: int = socket.AF_INET) -> tuple[str, int] | None:
        """Our listening address of a kind and family, for Via and Contact."""
        if kind == "udp":
            for endpoint in self.udp:
                if endpoint.address.family == family:
                    return endpoint.bound
        else:
            for address, _, bound in self.tcp_servers:
                if address.family == family:
                    return bound
        return None

    def contact_address(self, kind: str, target: tuple[str, int], advertise: str = "") -> tuple[str, int]:
        """Where ``target`` reaches us, for Via and Contact: the advertised host, else
        the listener's, and for a wildcard listener the address the OS routes from."""
        family = family_of(target[0])
        local = self.local(kind, family)
        if local is None:
            raise ConnectionError(f"no {kind} listen address for {target[0]}")
        host = advertise or local[0]
        if host in ("0.0.0.0", "::"):
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                probe.connect(target)
                host = str(probe.getsockname()[0])
        return host, local[1]

    def count_reject(self, kind: str, reason: str) -> None:
        if self.on_reject is not None:
            self.on_reject(kind, reason)

    # --- inbound ---

    def on_datagram(self, endpoint: UdpEndpoint, data: bytes, source: tuple[str, int]) -> None:
        if not data.strip(b"\r\n\x00 "):
            return  # keep-alive
        try:
            message = decode(data, self.limits)
        except Rejected as rejected:
            self.count_reject("udp", rejected.reason)
            target = salvaged_target(rejected, *source) if rejected.status else None
            if target is not None:
                if endpoint.answer(salvaged_response(rejected), target, source):
                    log.info("sip udp %s:%d: answered %s", *source, rejected)
            else:
                log.warning("sip udp %s:%d: dropped (%s)", *source, rejected.reason)
            return
        if isinstance(message, Request):
            stamp_via(message, *source)
        self._deliver(Inbound(message, "udp", source, udp=endpoint))

    def on_stream_message(self, connection: TcpConnection, data: bytes) -> None:
        try:
            message = decode(data, self.limits, stream=True)
        except Rejected as rejected:
            self.count_reject("tcp", rejected.reason)
            if rejected.status:
                connection.send(salvaged_response(rejected))
                log.info("sip tcp %s:%d: answered %s", *connection.peer, rejected)
            else:
                log.warning("sip tcp %s:%d: dropped (%s)", *connection.peer, rejected.reason)
            return
        if isinstance(message, Request):
            stamp_via(message, *connection.peer)
        self._deliver(Inbound(message, "tcp", connection.peer, tcp=connection))

    def _deliver(self, inbound: Inbound) -> None:
        try:
            self.on_message(inbound)
        except Exception:
            log.exception("sip handler failed on a message from %s:%d", *inbound.source)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self.connections) >= MAX_CONNECTIONS:
            self.count_reject("tcp", "Too Many Connections")
            log.warning("sip tcp: %d connections open, refusing another", len(self.connections))
            writer.close()
            return
        peer = writer.get_extra_info("peername")
        host = str(peer[0]) if peer else ""
        from_host = sum(1 for open_peer in self.connections if open_peer[0] == host)
        if from_host >= self.limits.tcp_connections_per_source:
            self.count_reject("tcp", "Too Many Connections From Source")
            log.warning("sip tcp: %d connections open from %s, refusing another", from_host, host)
            writer.close()
            return
        connection = TcpConnection(self, reader, writer, accepted=True)
        self.connections[connection.peer] = connection
        connection.task = asyncio.current_task()
        try:
            await connection.run()
        except asyncio.CancelledError:
            # Cancelled by stop(). This task is asyncio's client-connected
            # callback, and Python 3.11 logs a callback task that ends
            # cancelled as an error: end it normally, it has nothing left to do.
            return

    def on_connection_closed(self, connection: TcpConnection) -> None:
        if self.connections.get(connection.peer) is connection:
            del self.connections[connection.peer]
            if self.on_lost is not None:
                self.on_lost(connection.peer)

    # --- outbound ---

    def reply(self, inbound: Inbound, response: Response | bytes) -> None:
        """Send the answer to a request the way it came; never raises (a failure is logged)."""
        data = response if isinstance(response, bytes) else serialize(response)
        if inbound.tcp is not None:
            inbound.tcp.send(data)
        elif inbound.udp is not None and isinstance(inbound.message, Request):
            inbound.udp.answer(data, response_target(inbound.message, inbound.source), inbound.source)

    def send_udp(self, data: bytes, target: tuple[str, int]) -> None:
        family = family_of(target[0])
        for endpoint in self.udp:
            if endpoint.address.family == family:
                endpoint.sendto(data, target)
                return
        raise ConnectionError(f"no udp listener for the address family of {target[0]}")

    async def send_tcp(self, data: bytes, target: tuple[str, int]) -> None:
        connection = await self.connect(target)
        connection.send(data)
        await connection.writer.drain()

    async def connect(self, target: tuple[str, int]) -> TcpConnection:
        existing = self.connections.get(target)
        if existing is not None and not existing.writer.is_closing():
            return existing
        pending = self._connecting.get(target)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[TcpConnection] = asyncio.get_running_loop().create_future()
        self._connecting[target] = future
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(*target), 5)
            connection = TcpConnection(self, reader, writer)
            connection.peer = target
            self.connections[target] = connection
            connection.task = asyncio.create_task(connection.run(), name=f"sip-tcp-{target}")
            future.set_result(connection)
            return connection
        except BaseException as exc:
            future.set_exception(ConnectionError(str(exc)))
            future.exception()  # retrieved: the waiters get their own copy
            raise ConnectionError(f"tcp connect to {target[0]}:{target[1]} failed: {exc}") from None
        finally:
            del self._connecting[target]


async def resolve(host: str, port: int, transport: str) -> tuple[str, int]:
    """The first address of ``host`` for the transport, or ConnectionError."""
    kind = socket.SOCK_STREAM if transport == "tcp" else socket.SOCK_DGRAM
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=kind)
    if not infos:
        raise ConnectionError(f"cannot resolve {host}")
    address = infos[0][4]
    return str(address[0]), int(address[1])
