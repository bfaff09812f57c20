"""Raw SIP over loopback sockets, for tests that need to send exactly these bytes."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
from collections.abc import AsyncIterator
from typing import Any


class UdpPeer(asyncio.DatagramProtocol):
    """A UDP socket that queues whatever it receives."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[bytes] = asyncio.Queue()
        self.transport: Any = None
        self.port = 0

    @classmethod
    async def open(cls, host: str = "127.0.0.1") -> UdpPeer:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        _, peer = await asyncio.get_running_loop().create_datagram_endpoint(
            cls, local_addr=(host, 0), family=family
        )
        return peer

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.port = transport.get_extra_info("sockname")[1]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received.put_nowait(data)

    def send(self, data: bytes, target: tuple[str, int]) -> None:
        self.transport.sendto(data, target)

    async def next(self, timeout: float = 5) -> bytes:
        return await asyncio.wait_for(self.received.get(), timeout)

    def close(self) -> None:
        self.transport.close()


@contextlib.asynccontextmanager
async def udp_peer(host: str = "127.0.0.1") -> AsyncIterator[UdpPeer]:
    peer = await UdpPeer.open(host)
    try:
        yield peer
    finally:
        peer.close()


def request(
    method: str = "OPTIONS",
    *,
    port: int = 5070,
    host: str = "127.0.0.1",
    transport: str = "UDP",
    rport: bool = True,
    branch: str | None = None,
    omit: tuple[str, ...] = (),
    extra: list[str] | None = None,
    body: bytes = b"",
    content_length: str | None = None,
    uri: str = "sip:gateway@127.0.0.1",
    call_id: str | None = None,
) -> bytes:
    branch = branch or "z9hG4bK" + secrets.token_hex(6)
    headers = {
        "via": f"Via: SIP/2.0/{transport} {host}:{port};branch={branch}" + (";rport" if rport else ""),
        "max-forwards": "Max-Forwards: 70",
        "from": f"From: <sip:tester@{host}>;tag={secrets.token_hex(4)}",
        "to": "To: <sip:gateway@127.0.0.1>",
        "call-id": f"Call-ID: {call_id or secrets.token_hex(8)}",
        "cseq": f"CSeq: 1 {method}",
    }
    lines = [f"{method} {uri} SIP/2.0"]
    lines += [line for name, line in headers.items() if name not in omit]
    lines += extra or []
    lines.append(f"Content-Length: {content_length if content_length is not None else len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def status_of(data: bytes) -> int:
    first = data.split(b"\r\n", 1)[0].decode()
    assert first.startswith("SIP/2.0 "), first
    return int(first.split(" ")[1])


def header(data: bytes, name: str) -> str | None:
    for line in data.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return None


async def tcp_exchange(
    target: tuple[str, int], data: bytes, timeout: float = 5, *, check_closed: bool = False
) -> tuple[bytes, bool]:
    """Send bytes on a fresh TCP connection; the first response and (if asked) whether the gateway closed."""
    reader, writer = await asyncio.open_connection(*target)
    try:
        writer.write(data)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        closed = False
        if check_closed:
            closed = await asyncio.wait_for(reader.read(1), timeout) == b""
        return head, closed
    finally:
        writer.close()
