"""Header fields as RFC 3261 writes them (§7.3.1, §25.1): LWS, line folding, compact names.

Whatever whitespace the ABNF allows between the parts of a header, and a
header continued on the next line, reads as the plain form would; the TCP
framer finds the same Content-Length as the parser.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.sources.sip.adapter import Request, parse_message
from gateway.sources.sip.message_rules import (
    Limits,
    Rejected,
    asks_rport,
    decode,
    make_response,
    scan_head,
    sent_by_port,
    stamp_via,
    via_host,
)
from gateway.sources.sip.publish_rules import is_dialog_info
from tests.support.fakepbx import FakePbx, Publisher, dialog_info
from tests.support.harness import Client
from tests.support.sipkit import confirmed, ringing, sip_address, sip_gateway, sip_table
from tests.support.sipwire import header, request, status_of, tcp_exchange, udp_peer

ALICE = "sip:1001@pbx.test"


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Client]:
    async with sip_gateway(tmp_path, sip_table(publish_from=["127.0.0.1"])) as client:
        yield client


def _refused(data: bytes) -> tuple[int, str]:
    with pytest.raises(Rejected) as refused:
        decode(data, Limits())
    return refused.value.status, refused.value.reason


# --- Via: LWS in sent-protocol and before sent-by ---


@pytest.mark.parametrize(
    "via",
    [
        "SIP/2.0/UDP\t192.0.2.1:5070;branch=z9hG4bK1;rport",
        "SIP / 2.0 / UDP 192.0.2.1:5070;branch=z9hG4bK1;rport",
        "SIP\t/\t2.0\t/\tUDP\t192.0.2.1:5070;branch=z9hG4bK1;rport",
        "SIP/2.0/UDP 192.0.2.1 : 5070 ; branch=z9hG4bK1 ; rport",
    ],
)
def test_the_host_port_and_rport_of_a_via_are_read_across_any_lws_the_abnf_allows(via: str) -> None:
    assert (via_host(via), sent_by_port(via), asks_rport(via)) == ("192.0.2.1", 5070, True)


def test_a_request_whose_via_has_a_tab_before_the_host_is_accepted_and_stamped() -> None:
    data = request(port=5070, branch="z9hG4bKtab").replace(b"SIP/2.0/UDP ", b"SIP/2.0/UDP\t", 1)
    message = decode(data, Limits())
    assert isinstance(message, Request)
    stamp_via(message, "127.0.0.1", 4000)
    assert message.headers.get("via") == [
        "SIP/2.0/UDP\t127.0.0.1:5070;branch=z9hG4bKtab;rport=4000;received=127.0.0.1"
    ]


@pytest.mark.parametrize("kind", ["udp", "tcp"])
async def test_an_options_whose_via_has_a_tab_before_the_host_is_answered_200_with_rport_and_received(
    gw: Client, kind: str
) -> None:
    data = request(transport=kind.upper(), port=9, branch="z9hG4bKtab")
    data = data.replace(
        b"SIP/2.0/" + kind.upper().encode() + b" ", b"SIP/2.0/" + kind.upper().encode() + b"\t"
    )
    answer, port = await _exchange(gw, kind, data)
    assert status_of(answer) == 200
    assert header(answer, "via") == (
        f"SIP/2.0/{kind.upper()}\t127.0.0.1:9;branch=z9hG4bKtab;rport={port};received=127.0.0.1"
    )


# --- line folding ---


def test_a_folded_content_length_is_read_as_its_value() -> None:
    data = request(port=5070, body=b"hello").replace(b"Content-Length: 5", b"Content-Length:\r\n 5")
    assert decode(data, Limits()).body == b"hello"


def test_a_folded_content_length_is_what_the_framer_reads() -> None:
    data = request(port=5070, body=b"hello").replace(b"Content-Length: 5", b"Content-Length:\r\n\t5")
    assert scan_head(data, Limits())["content-length"] == ["5"]


def test_a_continuation_line_that_reads_like_content_length_is_no_header_to_the_framer() -> None:
    data = request(port=5070, extra=["Subject: a", " Content-Length: 99"])
    assert scan_head(data, Limits())["content-length"] == ["0"]


def test_a_fold_reads_as_one_space_in_the_value() -> None:
    data = request(port=5070, extra=["Subject: over \t", " \t two lines"])
    assert decode(data, Limits()).headers.get_first("subject") == "over two lines"


def test_a_header_section_opening_with_a_continuation_line_is_refused_400() -> None:
    data = request(port=5070).replace(b" SIP/2.0\r\n", b" SIP/2.0\r\n X-Note: a\r\n", 1)
    assert _refused(data) == (400, "Bad Header Fold")


def test_a_header_folded_past_the_line_cap_is_refused_400() -> None:
    data = request(port=5070, extra=["X-Note: a"] + [" " + "b" * 1000] * 5)
    assert _refused(data) == (400, "Header Too Long")


@pytest.mark.parametrize("kind", ["udp", "tcp"])
async def test_a_request_opening_with_a_continuation_line_is_answered_400_and_tcp_closed(
    gw: Client, kind: str
) -> None:
    data = request(transport=kind.upper(), port=9).replace(b" SIP/2.0\r\n", b" SIP/2.0\r\n\tX-Note: a\r\n", 1)
    if kind == "udp":
        async with udp_peer() as udp:
            udp.send(data, sip_address(gw, "udp"))
            answer = await udp.next()
    else:
        answer, closed = await tcp_exchange(sip_address(gw, "tcp"), data, check_closed=True)
        assert closed
    assert answer.split(b"\r\n", 1)[0] == b"SIP/2.0 400 Bad Header Fold"


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(["\r\n ", "\r\n\t", "\r\n \t ", "\n ", " \r\n  "]), min_size=6, max_size=6),
    st.integers(min_value=0, max_value=20),
)
def test_the_framer_and_the_parser_read_the_same_content_length_however_it_is_folded(
    folds: list[str], length: int
) -> None:
    lines = [
        "NOTIFY sip:a@b SIP/2.0",
        f"Content-Length:{folds[1]}{length}",
        f"Subject: x{folds[2]}Content-Length: 7",
        f"Via: SIP/2.0/UDP{folds[3]}h;branch=z9hG4bK1,{folds[4]}SIP/2.0/UDP g",
        f"X-Note:{folds[5]}l: 3",
        "From: <sip:a@b>;tag=1",
        "To: <sip:a@b>",
        "Call-ID: x",
        "CSeq: 1 NOTIFY",
    ]
    data = ("\r\n".join(lines) + "\r\n\r\n").encode() + b"b" * 30
    assert scan_head(data, Limits())["content-length"] == [str(length)]
    assert parse_message(data).headers.get("content-length") == [str(length)]
    assert decode(data, Limits()).body == b"b" * length


@pytest.mark.parametrize("kind", ["udp", "tcp"])
async def test_a_publish_with_folded_headers_reaches_the_users_stream(tmp_path: Path, kind: str) -> None:
    async with FakePbx(kind) as pbx, sip_gateway(tmp_path, sip_table(publish_from=["127.0.0.1"])) as gw:
        publisher = Publisher(pbx, sip_address(gw, kind))
        token = await gw.login("alice")
        async with gw.stream(token) as stream:
            # Two on one TCP connection: the first's body must end where its folded Content-Length says.
            for version, dialog in ((1, ringing("f1")), (2, confirmed("f1"))):
                branch, data = publisher.request(ALICE, dialog_info(ALICE, version, [dialog]))
                data = _fold(data, b"Content-Length: ", b"Content-Length:\r\n\t")
                data = _fold(data, b"Event: ", b"Event:\r\n ")
                data = _fold(data, b"Via: SIP/2.0/", b"Via: SIP/2.0/\r\n ")
                assert (await publisher.send(branch, data)).status == 200
            types = [event.json["type"] for event in await stream.take(2)]
        assert types == ["incomingCall", "callAnswered"]


async def test_a_continuation_line_reading_like_content_length_frames_nothing_on_tcp(gw: Client) -> None:
    second = request(transport="TCP", branch="z9hG4bKsecond")
    first = request(
        transport="TCP", branch="z9hG4bKfirst", extra=["Subject: a", f" Content-Length: {len(second)}"]
    )
    reader, writer = await asyncio.open_connection(*sip_address(gw, "tcp"))
    try:
        writer.write(first + second)
        answers = [await _read_answer(reader), await _read_answer(reader)]
    finally:
        writer.close()
    assert [status_of(answer) for answer in answers] == [200, 200]
    assert ["z9hG4bKfirst" in (header(answer, "via") or "") for answer in answers] == [True, False]


# --- compact names, separators, head and body ---


def test_the_compact_event_and_allow_events_names_read_as_the_full_names() -> None:
    message = parse_message(request(port=5070, extra=["o: dialog", "u: dialog, presence"]))
    assert message.headers.get_first("event") == "dialog"
    assert message.headers.get_first("allow-events") == "dialog, presence"


async def test_a_publish_with_the_compact_event_name_reaches_the_users_stream(tmp_path: Path) -> None:
    async with FakePbx("udp") as pbx, sip_gateway(tmp_path, sip_table(publish_from=["127.0.0.1"])) as gw:
        publisher = Publisher(pbx, sip_address(gw, "udp"))
        token = await gw.login("alice")
        async with gw.stream(token) as stream:
            branch, data = publisher.request(ALICE, dialog_info(ALICE, 1, [ringing("c1")]))
            assert (await publisher.send(branch, _fold(data, b"Event: ", b"o: "))).status == 200
            assert (await stream.next()).json["type"] == "incomingCall"


def test_the_body_begins_after_the_first_empty_line_whatever_its_line_ends() -> None:
    body = b"X\r\nVia: SIP/2.0/UDP 192.0.2.66;branch=z9hG4bKforged\r\n\r\n"
    head = request(port=5070, body=body).partition(b"\r\n\r\n")[0]
    data = head.replace(b"\r\n", b"\n") + b"\n\n" + body
    message = decode(data, Limits())
    assert (len(message.headers.get("via")), message.body) == (1, body)


@pytest.mark.parametrize(
    ("to", "answered"),
    [
        ("<sip:g@h>\t;\ttag=x", "<sip:g@h>\t;\ttag=x"),  # LWS around SEMI: already tagged
        ("<sip:g@h;tag=uri>", "<sip:g@h;tag=uri>;tag=ours"),  # the URI's parameter is no To tag
    ],
)
def test_our_to_tag_is_added_only_to_a_to_without_a_tag_parameter(to: str, answered: str) -> None:
    data = request(port=5070).replace(b"To: <sip:gateway@127.0.0.1>", b"To: " + to.encode())
    message = decode(data, Limits())
    assert isinstance(message, Request)
    assert make_response(message, 200, "OK", to_tag="ours").headers.get_first("to") == answered


def test_a_media_type_with_lws_around_its_slash_is_dialog_info() -> None:
    assert is_dialog_info("Application / Dialog-Info+XML ; charset=UTF-8")


def _fold(data: bytes, old: bytes, new: bytes) -> bytes:
    assert old in data
    return data.replace(old, new, 1)


async def _exchange(gw: Client, kind: str, data: bytes) -> tuple[bytes, int]:
    """Send a request as it is and await its answer; the source port it went from."""
    if kind == "udp":
        async with udp_peer() as udp:
            udp.send(data, sip_address(gw, "udp"))
            return await udp.next(), udp.port
    reader, writer = await asyncio.open_connection(*sip_address(gw, "tcp"))
    try:
        writer.write(data)
        return await _read_answer(reader), writer.get_extra_info("sockname")[1]
    finally:
        writer.close()


async def _read_answer(reader: asyncio.StreamReader) -> bytes:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    length = int(header(head, "content-length") or 0)
    return head + await asyncio.wait_for(reader.readexactly(length), 5)
