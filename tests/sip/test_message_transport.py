"""SIP transports: caps, malformed input, rport/received, TCP framing, IPv6."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.sources.sip.adapter import Request, parse_message
from gateway.sources.sip.message_rules import Limits
from gateway.sources.sip.message_transport import Inbound, ListenAddress, SipTransport
from tests.support.harness import Client
from tests.support.servers import free_port
from tests.support.sipkit import sip_address, sip_gateway, sip_service, sip_table
from tests.support.sipwire import UdpPeer, header, request, status_of, tcp_exchange, udp_peer


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Client]:
    async with sip_gateway(tmp_path, sip_table(max_message_bytes=4096, max_headers=64)) as client:
        yield client


@pytest.fixture
async def peer() -> AsyncIterator[UdpPeer]:
    async with udp_peer() as udp:
        yield udp


async def test_options_over_udp_is_answered_at_the_source_port_with_rport_filled_in(
    gw: Client, peer: UdpPeer
) -> None:
    peer.send(request(port=9, rport=True), sip_address(gw, "udp"))
    answer = await peer.next()
    assert status_of(answer) == 200
    via = header(answer, "via") or ""
    assert f"rport={peer.port}" in via
    assert "received=127.0.0.1" in via  # RFC 3581 §4: always, when rport is asked for


async def test_a_request_whose_via_names_another_host_gets_received_stamped(
    gw: Client, peer: UdpPeer
) -> None:
    peer.send(request(host="192.0.2.7", port=peer.port, rport=True), sip_address(gw, "udp"))
    answer = await peer.next()
    assert "received=127.0.0.1" in (header(answer, "via") or "")


async def test_a_request_without_call_id_is_answered_400(gw: Client, peer: UdpPeer) -> None:
    peer.send(request(port=peer.port, omit=("call-id",)), sip_address(gw, "udp"))
    answer = await peer.next()
    assert status_of(answer) == 400
    assert b"Missing Call-Id" in answer.split(b"\r\n")[0]


async def test_a_content_length_longer_than_the_datagram_is_answered_400(gw: Client, peer: UdpPeer) -> None:
    peer.send(request(port=peer.port, body=b"abc", content_length="50"), sip_address(gw, "udp"))
    assert status_of(await peer.next()) == 400


async def test_an_oversized_datagram_is_answered_413(gw: Client, peer: UdpPeer) -> None:
    peer.send(request(port=peer.port, body=b"x" * 5000), sip_address(gw, "udp"))
    assert status_of(await peer.next()) == 413


async def test_garbage_is_dropped_with_a_log_line_and_the_next_request_is_served(
    gw: Client, peer: UdpPeer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "gateway.sip"):
        peer.send(b"\x00\xff\xfe garbage \x80\r\n\r\n", sip_address(gw, "udp"))
        peer.send(request(port=peer.port), sip_address(gw, "udp"))
        assert status_of(await peer.next()) == 200
    assert any("dropped" in r.message for r in caplog.records)


async def test_an_unsupported_method_is_answered_405_with_allow(gw: Client, peer: UdpPeer) -> None:
    peer.send(request("INVITE", port=peer.port), sip_address(gw, "udp"))
    answer = await peer.next()
    assert status_of(answer) == 405
    assert "NOTIFY" in (header(answer, "allow") or "")


async def test_tcp_answers_on_the_same_connection_even_when_via_names_another_port(gw: Client) -> None:
    answer, _ = await tcp_exchange(sip_address(gw, "tcp"), request(transport="TCP", port=5999, rport=False))
    assert status_of(answer) == 200


async def test_tcp_with_an_unreadable_content_length_is_answered_400_and_closed(gw: Client) -> None:
    data = request(transport="TCP", content_length="banana")
    answer, closed = await tcp_exchange(sip_address(gw, "tcp"), data, check_closed=True)
    assert status_of(answer) == 400
    assert closed


async def test_tcp_with_a_body_over_the_cap_is_answered_413_and_closed(gw: Client) -> None:
    data = request(transport="TCP", content_length="100000")
    answer, closed = await tcp_exchange(sip_address(gw, "tcp"), data, check_closed=True)
    assert status_of(answer) == 413
    assert closed


async def test_tcp_accepts_bare_lf_line_ends(gw: Client) -> None:
    data = request(transport="TCP").replace(b"\r\n", b"\n")
    answer, _ = await tcp_exchange(sip_address(gw, "tcp"), data)
    assert status_of(answer) == 200


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
async def test_an_ipv6_udp_listener_answers(tmp_path: Path) -> None:
    async with sip_gateway(tmp_path, sip_table(listen=["udp:[::1]:0"])) as gw:
        peer = await UdpPeer.open("::1")
        try:
            peer.send(request(host="[::1]", port=peer.port), sip_address(gw, "udp", socket.AF_INET6))
            assert status_of(await peer.next()) == 200
        finally:
            peer.close()


async def test_a_forged_rport_and_received_cannot_point_the_answer_elsewhere(gw: Client) -> None:
    async with udp_peer() as attacker, udp_peer() as victim:
        forged = request(port=victim.port, rport=True).replace(
            b";rport", f";rport={victim.port};received=192.0.2.66".encode(), 1
        )
        attacker.send(forged, sip_address(gw, "udp"))
        answer = await attacker.next()
        via = header(answer, "via") or ""
        assert f"rport={attacker.port}" in via
        assert "192.0.2.66" not in via and f"rport={victim.port}" not in via


async def test_answers_to_options_are_not_kept_for_retransmissions(gw: Client, peer: UdpPeer) -> None:
    data = request(port=peer.port)
    for _ in range(2):
        peer.send(data, sip_address(gw, "udp"))
        assert status_of(await peer.next()) == 200
    assert len(sip_service(gw).server) == 0
    assert "gateway_sip_retransmissions_total 0.0" in (await gw.http.get("/metrics")).text


async def test_the_retransmission_cache_takes_its_byte_cap_from_the_settings(tmp_path: Path) -> None:
    async with sip_gateway(tmp_path, sip_table(transaction_cache_bytes=2 * 1024 * 1024)) as gw:
        assert sip_service(gw).server.max_bytes == 2 * 1024 * 1024


async def test_a_udp_request_whose_via_port_is_absurd_leaves_no_transaction_and_no_traceback(
    gw: Client, peer: UdpPeer, caplog: pytest.LogCaptureFixture
) -> None:
    absurd = request("NOTIFY", port=peer.port, rport=False).replace(
        f":{peer.port};".encode(), b":" + b"9" * 30 + b";", 1
    )
    with caplog.at_level(logging.INFO):
        peer.send(absurd, sip_address(gw, "udp"))
        peer.send(request(port=peer.port), sip_address(gw, "udp"))
        assert status_of(await peer.next()) == 200
    assert len(sip_service(gw).server) == 0
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert any("Bad Via" in r.getMessage() for r in caplog.records)


async def test_an_answer_that_cannot_be_routed_is_a_log_line_not_an_exception(
    gw: Client, caplog: pytest.LogCaptureFixture
) -> None:
    transport = sip_service(gw).transport
    message = parse_message(
        request("NOTIFY", port=5070, rport=False).replace(b":5070;", b":" + b"9" * 30 + b";")
    )
    assert isinstance(message, Request)
    inbound = Inbound(message, "udp", ("127.0.0.1", 5070), udp=transport.udp[0])
    with caplog.at_level(logging.WARNING, "gateway.sip"):
        transport.reply(inbound, b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert any("answer dropped" in r.getMessage() for r in caplog.records)


async def test_an_answer_to_an_out_of_range_port_is_refused_and_the_listener_stays_open(
    gw: Client, peer: UdpPeer
) -> None:
    # asyncio's datagram transport closes itself on an OverflowError from sendto.
    endpoint = sip_service(gw).transport.udp[0]
    assert not endpoint.answer(b"SIP/2.0 200 OK\r\n\r\n", ("127.0.0.1", 10**30), ("127.0.0.1", 5070))
    peer.send(request(port=peer.port), sip_address(gw, "udp"))
    assert status_of(await peer.next()) == 200


async def test_tcp_with_more_header_lines_than_the_cap_is_answered_400_and_closed(gw: Client) -> None:
    # The framer cannot trust a Content-Length past the lines it reads: a body
    # it took for empty would be read as the next message (here an OPTIONS).
    smuggled = request(transport="TCP")
    lines = [f"X{n}: 1" for n in range(270)]
    data = request(transport="TCP", extra=lines, body=smuggled)
    answer, closed = await tcp_exchange(sip_address(gw, "tcp"), data, check_closed=True)
    assert status_of(answer) == 400
    assert closed


async def test_tcp_with_as_many_header_lines_as_the_cap_is_served(gw: Client) -> None:
    # The fixture's cap is 64 line ends in the header section: 65 lines, 57 of them extra.
    data = request(transport="TCP", extra=[f"X{n}: 1" for n in range(57)])
    answer, _ = await tcp_exchange(sip_address(gw, "tcp"), data)
    assert status_of(answer) == 200


async def test_listeners_opened_before_one_that_cannot_bind_are_closed_again() -> None:
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    try:
        first = free_port(socket.SOCK_DGRAM)
        addresses = [
            ListenAddress("udp", "127.0.0.1", first),
            ListenAddress("udp", "127.0.0.1", taken.getsockname()[1]),
        ]
        transport = SipTransport(addresses, Limits(), lambda _: None)
        with pytest.raises(OSError):
            await transport.start()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
            again.bind(("127.0.0.1", first))  # free: nothing of ours holds it
    finally:
        taken.close()


async def test_tcp_with_a_bare_cr_in_its_headers_is_answered_400_and_closed(gw: Client) -> None:
    # To the parser a bare CR ends a line, to the framer it does not: here
    # only the parser would see the Content-Length, and the framer would
    # serve the body (an OPTIONS) as the next message.
    smuggled = request(transport="TCP")
    data = request(transport="TCP", extra=[f"X-Note: a\rContent-Length: {len(smuggled)}"])
    answer, closed = await tcp_exchange(sip_address(gw, "tcp"), data + smuggled, check_closed=True)
    assert status_of(answer) == 400
    assert closed
