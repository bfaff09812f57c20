"""Hostile and malformed SIP (RFC 4475 kinds) and XML bombs: precise answers, nothing lost."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.fakepbx import FakePbx, Publisher
from tests.support.harness import Client
from tests.support.sipkit import ringing, sip_address, sip_gateway, sip_service, sip_table
from tests.support.sipwire import UdpPeer, request, status_of, tcp_exchange, udp_peer

ROOT = (
    b'<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="full"'
    b' entity="sip:1001@pbx.test">'
)

BILLION_LAUGHS = (
    b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
"""
    + ROOT
    + b"&lol3;</dialog-info>"
)

EXTERNAL_ENTITY = (
    b"""<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>
"""
    + ROOT
    + b"&x;</dialog-info>"
)

DEEP = ROOT + b"<a>" * 5000 + b"</a>" * 5000 + b"</dialog-info>"


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Client]:
    table = sip_table(max_message_bytes=32768, max_headers=64, tcp_message_seconds=0.3)
    async with sip_gateway(tmp_path, table) as client:
        yield client


@pytest.fixture
async def peer() -> AsyncIterator[UdpPeer]:
    async with udp_peer() as udp:
        yield udp


def _torture(port: int) -> dict[str, tuple[bytes, int]]:
    """Name -> (datagram, the status it must get)."""
    ok = request(port=port)
    return {
        "missing From": (request(port=port, omit=("from",)), 400),
        "missing To": (request(port=port, omit=("to",)), 400),
        "missing CSeq": (request(port=port, omit=("cseq",)), 400),
        "negative Content-Length": (request(port=port, content_length="-5"), 400),
        "non-numeric Content-Length": (request(port=port, content_length="12abc"), 400),
        "two different Content-Lengths": (request(port=port, extra=["Content-Length: 9"]), 400),
        # As the TCP framer refuses it: one header, one length (RFC 3261 §7.3.1).
        "two identical Content-Lengths": (request(port=port, extra=["Content-Length: 0"]), 400),
        "CSeq method differs from the request line": (ok.replace(b"CSeq: 1 OPTIONS", b"CSeq: 1 NOTIFY"), 400),
        "CSeq number beyond 2**31": (ok.replace(b"CSeq: 1 OPTIONS", b"CSeq: 99999999999 OPTIONS"), 400),
        "unknown SIP version": (ok.replace(b" SIP/2.0\r\n", b" SIP/7.0\r\n", 1), 505),
        "request line with extra spaces": (ok.replace(b"OPTIONS sip:", b"OPTIONS  sip:", 1), 400),
        "header line over the cap": (request(port=port, extra=["X-Huge: " + "a" * 8000]), 400),
        "thousands of headers": (request(port=port, extra=[f"X-H{i}: v" for i in range(2500)]), 400),
        "oversized message": (request(port=port, body=b"x" * 40000), 413),
        "bare LF line ends are tolerated": (ok.replace(b"\r\n", b"\n"), 200),
        "a bare CR inside a header": (request(port=port, extra=["X-Note: a\rX-Other: b"]), 400),
        "compact header forms are understood": (
            ok.replace(b"Call-ID:", b"i:").replace(b"From:", b"f:").replace(b"To:", b"t:"),
            200,
        ),
    }


@pytest.mark.parametrize("name", list(_torture(5060)))
async def test_torture_message_gets_its_precise_answer(gw: Client, peer: UdpPeer, name: str) -> None:
    data, status = _torture(peer.port)[name]
    peer.send(data, sip_address(gw, "udp"))
    assert status_of(await peer.next()) == status


@pytest.mark.parametrize(
    "data",
    [
        b"\x00" * 64,
        bytes(random.Random(7).randrange(256) for _ in range(1500)),
        b"OPTIONS sip:x SIP/2.0\r\nFrom: <sip:a@b>\r\n\r\n",  # no Via: nowhere to answer
        b"SIP/2.0 2OO OK\r\nVia: SIP/2.0/UDP 127.0.0.1\r\n\r\n",
        b"\r\n\r\n\r\n",
        "INVITE sip:\u00e9@x SIP/2.0\r\n\r\n".encode("utf-16"),
    ],
    ids=["nul bytes", "random bytes", "no Via", "bad status line", "only CRLFs", "utf-16"],
)
async def test_unanswerable_input_is_dropped_and_the_next_request_is_served(
    gw: Client, peer: UdpPeer, data: bytes
) -> None:
    peer.send(data, sip_address(gw, "udp"))
    peer.send(request(port=peer.port), sip_address(gw, "udp"))
    assert status_of(await peer.next()) == 200


async def test_refused_messages_leave_no_transaction_state_behind(gw: Client, peer: UdpPeer) -> None:
    service = sip_service(gw)
    before = len(service.server)
    for _ in range(300):
        peer.send(request(port=peer.port, omit=("cseq",)), sip_address(gw, "udp"))
        assert status_of(await peer.next()) == 400
    assert len(service.server) == before


async def test_a_tcp_header_section_without_end_is_cut_at_the_cap(gw: Client) -> None:
    data = request(transport="TCP").split(b"\r\n\r\n")[0] + b"\r\n" + b"X-Flood: aaaaaaaa\r\n" * 3000
    answer, closed = await tcp_exchange(sip_address(gw, "tcp"), data, check_closed=True)
    assert status_of(answer) == 413
    assert closed


@pytest.mark.parametrize(
    "body", [BILLION_LAUGHS, EXTERNAL_ENTITY, DEEP], ids=["billion laughs", "xxe", "deep"]
)
async def test_an_xml_bomb_in_a_notify_is_refused_and_other_users_calls_flow(
    tmp_path: Path, body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    async with FakePbx("udp") as pbx, sip_gateway(tmp_path, sip_table(pbx)) as gw:
        token = await gw.login("bob")
        async with gw.stream(token) as stream:
            alice = await pbx.subscribed("1001")
            await pbx.subscribed("1002")
            with caplog.at_level(logging.WARNING, "gateway.sip"):
                branch, data = pbx.notify_bytes(alice, body)
                assert (await pbx.transact(alice, branch, data)).status == 200
            assert any("body refused" in r.message for r in caplog.records)
            await pbx.notify("1002", [ringing("b1")])
            assert (await stream.next()).json["type"] == "incomingCall"
        metrics = (await gw.http.get("/metrics")).text
        assert 'gateway_rejected_total{reason="Bad dialog-info",where="sip/notify"} 1.0' in metrics


async def test_a_refused_notify_body_keeps_the_subscription_and_asks_for_full_state(
    tmp_path: Path,
) -> None:
    async with FakePbx("udp") as pbx, sip_gateway(tmp_path, sip_table(pbx)):
        alice = await pbx.subscribed("1001")
        branch, data = pbx.notify_bytes(alice, BILLION_LAUGHS)
        assert (await pbx.transact(alice, branch, data)).status == 200
        refreshed = await pbx.subscribed("1001")
        assert refreshed.call_id == alice.call_id  # an in-dialog refresh, not a new subscription


@pytest.mark.parametrize(
    "body", [BILLION_LAUGHS, EXTERNAL_ENTITY, DEEP], ids=["billion laughs", "xxe", "deep"]
)
async def test_an_xml_bomb_in_a_publish_is_answered_400(tmp_path: Path, body: bytes) -> None:
    async with (
        FakePbx("udp") as pbx,
        sip_gateway(tmp_path, sip_table(publish_from=["127.0.0.1"])) as gw,
    ):
        answer = await Publisher(pbx, sip_address(gw, "udp")).publish("sip:1001@pbx.test", body)
        assert answer.status == 400


async def test_a_tcp_peer_trickling_a_message_is_cut_off(gw: Client) -> None:
    reader, writer = await asyncio.open_connection(*sip_address(gw, "tcp"))
    try:
        writer.write(
            b"OPTIONS sip:gateway@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKx\r\n"
        )
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed, nothing said
    finally:
        writer.close()


async def test_a_tcp_line_beyond_every_cap_closes_the_connection(gw: Client) -> None:
    reader, writer = await asyncio.open_connection(*sip_address(gw, "tcp"))
    try:
        writer.write(b"OPTIONS sip:gateway@127.0.0.1 SIP/2.0\r\nX-Long: " + b"a" * 100_000)
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 5) == b""
    finally:
        writer.close()


async def test_requests_beyond_the_in_flight_cap_are_answered_503(gw: Client, peer: UdpPeer) -> None:
    sip_service(gw).max_in_flight = 0
    peer.send(request(port=peer.port), sip_address(gw, "udp"))
    assert status_of(await peer.next()) == 503
    sip_service(gw).max_in_flight = 1
    peer.send(request(port=peer.port), sip_address(gw, "udp"))
    assert status_of(await peer.next()) == 200


@pytest.fixture
async def tight(tmp_path: Path) -> AsyncIterator[Client]:
    table = sip_table(tcp_message_seconds=0.3, tcp_idle_seconds=0.5, tcp_connections_per_source=2)
    async with sip_gateway(tmp_path, table) as client:
        yield client


async def test_an_idle_tcp_connection_is_closed(tight: Client) -> None:
    reader, writer = await asyncio.open_connection(*sip_address(tight, "tcp"))
    try:
        assert await asyncio.wait_for(reader.read(), 5) == b""
    finally:
        writer.close()


async def test_a_trickled_first_line_is_cut_off_by_the_message_timeout(tmp_path: Path) -> None:
    table = sip_table(tcp_message_seconds=0.3, tcp_idle_seconds=600)
    async with sip_gateway(tmp_path, table) as gw:
        reader, writer = await asyncio.open_connection(*sip_address(gw, "tcp"))
        try:
            writer.write(b"OPTIONS sip:gateway@127.0.0.1")
            await writer.drain()
            assert await asyncio.wait_for(reader.read(), 5) == b""
        finally:
            writer.close()


async def test_a_crlf_crlf_ping_is_answered_with_a_crlf_pong(tight: Client) -> None:
    reader, writer = await asyncio.open_connection(*sip_address(tight, "tcp"))
    try:
        writer.write(b"\r\n\r\n")
        await writer.drain()
        assert await asyncio.wait_for(reader.readexactly(2), 5) == b"\r\n"
        writer.write(request(transport="TCP"))
        await writer.drain()
        assert status_of(await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)) == 200
    finally:
        writer.close()


async def test_connections_beyond_the_per_source_cap_are_refused(tight: Client) -> None:
    target = sip_address(tight, "tcp")
    opened = [await asyncio.open_connection(*target) for _ in range(3)]
    try:
        for reader, writer in opened[:2]:
            writer.write(request(transport="TCP"))
            await writer.drain()
            assert status_of(await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)) == 200
        assert await asyncio.wait_for(opened[2][0].read(), 5) == b""
    finally:
        for _, writer in opened:
            writer.close()


async def test_a_first_line_beyond_the_reader_limit_is_refused_and_counted(gw: Client) -> None:
    reader, writer = await asyncio.open_connection(*sip_address(gw, "tcp"))
    try:
        writer.write(b"O" * 100_000)
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 5) == b""
    finally:
        writer.close()
    metrics = (await gw.http.get("/metrics")).text
    assert 'gateway_rejected_total{reason="Message Too Large",where="sip/tcp"} 1.0' in metrics
