"""Numbers in SIP headers: only ASCII decimal digits count, anything else is refused precisely."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.sources.sip.message_rules import Limits, Rejected, decode, sent_by_port
from tests.support.harness import Client
from tests.support.sipkit import sip_address, sip_gateway, sip_table
from tests.support.sipwire import UdpPeer, request, status_of, tcp_exchange, udp_peer

# Characters str.isdigit() or int() accept that are not ASCII digits.
ODD_DIGITS = ["\u00b2", "\uff11\uff12", "\u0663", "1_0", "+5", "\u00b9\u00b2"]


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Client]:
    async with sip_gateway(tmp_path, sip_table()) as client:
        yield client


@pytest.fixture
async def peer() -> AsyncIterator[UdpPeer]:
    async with udp_peer() as udp:
        yield udp


def _latin1(data: bytes, old: bytes, new: str) -> bytes:
    return data.replace(old, new.encode("utf-8"), 1)


@pytest.mark.parametrize("odd", ODD_DIGITS)
def test_a_content_length_of_odd_digits_is_refused_400(odd: str) -> None:
    data = request(content_length=odd).replace(odd.encode(), odd.encode("utf-8"))
    with pytest.raises(Rejected) as refused:
        decode(data, Limits())
    assert (refused.value.status, refused.value.reason) == (400, "Bad Content-Length")


def test_a_latin1_superscript_content_length_is_refused_400() -> None:
    data = request(content_length="0").replace(b"Content-Length: 0", b"Content-Length: \xb2")
    with pytest.raises(Rejected) as refused:
        decode(data, Limits())
    assert (refused.value.status, refused.value.reason) == (400, "Bad Content-Length")


@pytest.mark.parametrize("odd", ODD_DIGITS)
def test_a_cseq_number_of_odd_digits_is_refused_400(odd: str) -> None:
    data = _latin1(request(), b"CSeq: 1 ", f"CSeq: {odd} ")
    with pytest.raises(Rejected) as refused:
        decode(data, Limits())
    assert (refused.value.status, refused.value.reason) == (400, "Bad CSeq")


@pytest.mark.parametrize("odd", [*ODD_DIGITS, "9" * 30, "0", "65536", "-1", ""])
def test_a_via_port_that_is_not_a_port_is_refused_400(odd: str) -> None:
    data = _latin1(request(port=5070), b":5070;", f":{odd};")
    with pytest.raises(Rejected) as refused:
        decode(data, Limits())
    assert (refused.value.status, refused.value.reason) == (400, "Bad Via")


@pytest.mark.parametrize(
    ("via", "port"),
    [
        ("SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bK1", 5070),
        ("SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1", None),
        ("SIP/2.0/TCP [fd00::5]:5061;rport", 5061),
        ("SIP / 2.0 / UDP host.example : 7000 ;branch=z9hG4bK1", 7000),
    ],
)
def test_the_via_port_is_read_from_the_sent_by(via: str, port: int | None) -> None:
    assert sent_by_port(via) == port


async def test_a_latin1_digit_content_length_over_udp_is_answered_400_without_traceback(
    gw: Client, peer: UdpPeer, caplog: pytest.LogCaptureFixture
) -> None:
    data = request(port=peer.port).replace(b"Content-Length: 0", b"Content-Length: \xb2")
    with caplog.at_level(logging.INFO):
        peer.send(data, sip_address(gw, "udp"))
        assert status_of(await peer.next()) == 400
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def test_a_utf8_superscript_content_length_over_tcp_is_answered_400(gw: Client) -> None:
    data = request(transport="TCP").replace(b"Content-Length: 0", "Content-Length: \u00b2".encode())
    answer, closed = await tcp_exchange(sip_address(gw, "tcp"), data, check_closed=True)
    assert status_of(answer) == 400
    assert b"Bad Content-Length" in answer.split(b"\r\n")[0]
    assert closed
