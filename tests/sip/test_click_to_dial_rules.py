"""Click-to-dial's pure decisions: our legs recognised, sipfrags read, the next hop of a leg."""

from __future__ import annotations

import pytest

from gateway.config import ConfigError
from gateway.model import Direction, EndStatus, Phase
from gateway.sources.sip.click_to_dial_rules import (
    Connected,
    Ended,
    Hop,
    awaits_reason,
    held_signal,
    held_text,
    invite_refused,
    is_own_leg,
    leg_call_id,
    next_hop,
    refer_outcome,
    route_set,
    sipfrag_status,
    tag_of,
)
from gateway.sources.sip.settings import sip_settings
from tests.support.click_to_dial_rig import reasonless_end

SECRET = b"secret-for-tests"


def test_a_leg_call_id_is_recognised_by_any_instance_sharing_the_secret() -> None:
    call_id = leg_call_id(SECRET, bytes(8), "10.0.0.20")
    assert is_own_leg(SECRET, call_id)
    assert not is_own_leg(b"another-secret", call_id)


@pytest.mark.parametrize(
    "call_id",
    ["ctd.0000000000000000.0000000000000000000@x", "ctd.a.b", "abc@host", "", "ctd..@h"],
)
def test_a_call_id_that_only_looks_like_ours_is_a_call_of_its_own(call_id: str) -> None:
    assert not is_own_leg(SECRET, call_id)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"SIP/2.0 100 Trying\r\n", (100, "Trying")),
        (b"SIP/2.0 200 OK", (200, "OK")),
        (b"  sip/2.0 486 Busy Here\r\nVia: x\r\n", (486, "Busy Here")),
        (b"SIP/2.0 408", (408, "")),
        (b"SIP/2.0 99 Odd", None),
        (b"SIP/2.0 \xd9\xa4\xd9\xa8\xd9\xa6 Busy", None),  # Arabic-Indic digits are no status
        (b"", None),
        (b"<xml/>", None),
    ],
)
def test_a_sipfrag_gives_its_status_line(body: bytes, status: tuple[int, str] | None) -> None:
    assert sipfrag_status(body) == status


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (486, EndStatus.BUSY),
        (600, EndStatus.BUSY),
        (603, EndStatus.REJECTED),
        (408, EndStatus.NO_ANSWER),
        (480, EndStatus.NO_ANSWER),
        (487, EndStatus.CANCELED),
        (404, EndStatus.FAILED),
        (503, EndStatus.FAILED),
    ],
)
def test_a_final_failure_in_a_sipfrag_is_the_dialled_calls_end(code: int, status: EndStatus) -> None:
    outcome = refer_outcome(code, "Reason")
    assert isinstance(outcome, Ended) and outcome.status is status


def test_a_provisional_sipfrag_decides_nothing_and_a_2xx_connects() -> None:
    assert refer_outcome(180, "Ringing") is None
    assert refer_outcome(200, "OK") == Connected()


def test_a_refused_invite_says_what_to_check() -> None:
    assert "credentials" in invite_refused(407, "Proxy Authentication Required", "sip:1001@pbx").message
    assert "registered" in invite_refused(480, "Temporarily Unavailable", "sip:1001@pbx").message
    assert "does not know" in invite_refused(404, "Not Found", "sip:1001@pbx").message


def test_the_route_set_of_a_uac_is_the_record_route_reversed_entries_split() -> None:
    values = ["<sip:p2.test;lr>, <sip:p1.test;lr;ftag=a,b>", "<sip:p0.test;lr>"]
    assert route_set(values) == ["<sip:p0.test;lr>", "<sip:p1.test;lr;ftag=a,b>", "<sip:p2.test;lr>"]


def test_an_in_dialog_request_goes_to_the_first_route_else_to_the_remote_target() -> None:
    assert next_hop(["<sip:127.0.0.1:5070;lr>"], "sip:1001@10.0.0.5:5062", "udp") == Hop(
        "127.0.0.1", 5070, "udp"
    )
    assert next_hop([], "sip:1001@[2001:db8::5]:5062;transport=tcp", "udp") == Hop("2001:db8::5", 5062, "tcp")
    assert next_hop([], "sip:phone.test", "udp") == Hop("phone.test", 5060, "udp")
    assert next_hop([], "sip:1001@host:99999", "udp") is None


def test_a_tag_is_read_outside_the_uri() -> None:
    assert tag_of("<sip:a@b;tag=uri-param>;tag=real") == "real"
    assert tag_of("<sip:a@b>") is None


@pytest.mark.parametrize("ring", [0, 301, "30", True])
def test_a_ring_time_out_of_range_stops_the_start(ring: object) -> None:
    table = {"listen": ["udp:127.0.0.1:0"], "pbx": {"100": {"address": "pbx.test", "ring_seconds": ring}}}
    with pytest.raises(ConfigError, match="ring_seconds"):
        sip_settings({"sip": table})


def test_a_reasonless_end_of_an_outbound_call_awaits_the_sipfrag_of_its_number() -> None:
    assert awaits_reason(reasonless_end()) == "+12125550100"


@pytest.mark.parametrize(
    "changes",
    [
        {"end_status": EndStatus.BUSY},
        {"sip_code": 486},
        {"direction": Direction.INBOUND},
        {"phase": Phase.ANSWERED},
        {"to_number": None},
    ],
    ids=["with a status", "with a code", "inbound", "not an end", "no number"],
)
def test_an_end_with_a_reason_or_any_other_signal_goes_on_at_once(changes: dict[str, object]) -> None:
    assert awaits_reason(reasonless_end(**changes)) is None


def test_a_held_end_travels_as_text_and_comes_back_the_same() -> None:
    end = reasonless_end(remote_name="Bob", duration_ms=1200, transferred=True)
    assert held_signal(held_text(end)) == end
    assert held_signal(held_text(reasonless_end(from_number=None))) == reasonless_end(from_number=None)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "[]",
        '{"source": "sip"}',
        '{"source": "sip", "call_id": "c", "user_id": "alice", "at_ms": "1", "transferred": false}',
        '{"source": "sip", "call_id": "c", "user_id": "alice", "at_ms": 1, "transferred": 0}',
    ],
)
def test_text_that_is_not_a_held_end_is_refused(text: str) -> None:
    assert held_signal(text) is None
