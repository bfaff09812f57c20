"""Require (RFC 3261 §8.2.2.3): an option we do not support gets 420 with Unsupported."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.sources.sip.adapter import Request, parse_message
from gateway.sources.sip.message_rules import unsupported_options
from tests.support.fakepbx import FakePbx
from tests.support.harness import Client
from tests.support.sipkit import ringing, sip_address, sip_gateway, sip_table
from tests.support.sipwire import UdpPeer, header, request, status_of, udp_peer


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Client]:
    async with sip_gateway(tmp_path, sip_table()) as client:
        yield client


@pytest.fixture
async def peer() -> AsyncIterator[UdpPeer]:
    async with udp_peer() as udp:
        yield udp


def _parsed(data: bytes) -> Request:
    message = parse_message(data)
    assert isinstance(message, Request)
    return message


async def test_an_unknown_required_option_is_answered_420_listing_it(gw: Client, peer: UdpPeer) -> None:
    peer.send(request(port=peer.port, extra=["Require: foo, 100rel", "Require: bar"]), sip_address(gw, "udp"))
    answer = await peer.next()
    assert status_of(answer) == 420
    assert header(answer, "unsupported") == "foo, 100rel, bar"


def test_each_unsupported_option_is_listed_once() -> None:
    message = _parsed(request(extra=["Require: foo, ,foo", "Require: Foo"]))
    assert unsupported_options(message) == ["foo", "Foo"]


@pytest.mark.parametrize("method", ["ACK", "CANCEL"])
def test_ack_and_cancel_are_never_refused_for_what_they_require(method: str) -> None:
    assert unsupported_options(_parsed(request(method, extra=["Require: foo"]))) == []


async def test_a_method_we_do_not_serve_gets_405_before_420(gw: Client, peer: UdpPeer) -> None:
    peer.send(request("INVITE", port=peer.port, extra=["Require: foo"]), sip_address(gw, "udp"))
    assert status_of(await peer.next()) == 405


async def test_a_notify_requiring_an_unknown_option_is_refused_and_the_subscription_starts_over(
    tmp_path: Path,
) -> None:
    async with FakePbx("udp") as pbx, sip_gateway(tmp_path, sip_table(pbx)):
        first = await pbx.subscribed("1001")
        branch, data = pbx.notify_bytes(first, pbx.document(first, [ringing("q1")]))
        data = data.replace(b"Event: dialog\r\n", b"Event: dialog\r\nRequire: foo\r\n")
        answer = await pbx.transact(first, branch, data)
        assert (answer.status, answer.get("unsupported")) == (420, "foo")
        again = await pbx.subscribed("1001")
        assert again.call_id != first.call_id
