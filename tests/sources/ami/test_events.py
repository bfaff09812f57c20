"""AMI event scripts of real scenarios, through the pure reducer and the call model: what each user is told.

Table-style: one row per scenario (tests/support/ami_calls.py), the SDK
events each user's page gets, with the numbers of the start event.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gateway.model import Signal
from gateway.sources.ami import events
from gateway.sources.ami.protocol import Message
from gateway.sources.pbxcalls import CallBook
from gateway.users.directory import Directory, User
from tests.support import ami_calls
from tests.support.fake_ami import Fields
from tests.support.told import starts, told

ALICE = User("alice", "alice", 100, "x", numbers=("+15555550101",), extension="1001")
BOB = User("bob", "bob", 100, "x", numbers=("+15555550102",), aors=("sip:1002@pbx.test",))
OTHER_TENANT = User("carol", "carol", 200, "x", extension="1002")


def directory() -> Directory:
    return Directory([ALICE, BOB, OTHER_TENANT])


def message(fields: Fields) -> Message:
    return Message({key.lower(): value for key, value in fields.items()})


def play(script: list[Fields], book: CallBook | None = None) -> list[Signal]:
    book = book or CallBook("ami", 100, events.dial_of)
    out: list[Signal] = []
    for now, fields in enumerate(script, 1):
        out += events.apply(book, message(fields), directory(), now_ms=1000 * now)
    return out


L1 = "1701480000.1"
IN = ["incomingCall"]
DONE = ["callAnswered", "callEnded:COMPLETED", "callCompleted"]
Script = Callable[[], list[Fields]]

SCENARIOS: list[tuple[str, Script, dict[str, list[str]]]] = [
    ("inbound answered", ami_calls.inbound_answered, {f"alice {L1}": IN + DONE}),
    (
        "ring group answered by bob: alice's ring was answered elsewhere",
        lambda: ami_calls.ring_group("1002"),
        {f"alice {L1}": [*IN, "callEnded:CANCELED", "callCompleted"], f"bob {L1}": IN + DONE},
    ),
    (
        "queue answered by alice: bob's ring was cancelled while alice talked, not missed",
        lambda: ami_calls.queue("1001"),
        {f"alice {L1}": IN + DONE, f"bob {L1}": [*IN, "callEnded:CANCELED", "callCompleted"]},
    ),
    (
        "ring group nobody answered: missed for both",
        lambda: ami_calls.ring_group(None),
        {
            f"alice {L1}": [*IN, "callEnded:MISSED", "callCompleted"],
            f"bob {L1}": [*IN, "callEnded:MISSED", "callCompleted"],
        },
    ),
    (
        "caller gave up: missed",
        lambda: ami_calls.inbound_unanswered("CANCEL", "16"),
        {f"alice {L1}": [*IN, "callEnded:MISSED", "callCompleted"]},
    ),
    (
        "phone busy",
        lambda: ami_calls.inbound_unanswered("BUSY", "17"),
        {f"alice {L1}": [*IN, "callEnded:BUSY", "callCompleted"]},
    ),
    (
        "no answer on an inbound ring reads as missed",
        lambda: ami_calls.inbound_unanswered("NOANSWER", "19"),
        {f"alice {L1}": [*IN, "callEnded:MISSED", "callCompleted"]},
    ),
    ("outbound through the trunk answered", ami_calls.outbound, {f"alice {L1}": ["outgoingCall", *DONE]}),
    (
        "outbound: the number is busy",
        lambda: ami_calls.outbound("BUSY", "17"),
        {f"alice {L1}": ["outgoingCall", "callEnded:BUSY", "callCompleted"]},
    ),
    (
        "outbound: nobody answers",
        lambda: ami_calls.outbound("NOANSWER", "19"),
        {f"alice {L1}": ["outgoingCall", "callEnded:NO_ANSWER", "callCompleted"]},
    ),
    (
        "outbound: the trunk is congested",
        lambda: ami_calls.outbound("CONGESTION", "34"),
        {f"alice {L1}": ["outgoingCall", "callEnded:FAILED", "callCompleted"]},
    ),
    (
        "blind transfer: alice's leg transferred, bob's answered",
        ami_calls.blind_transferred,
        {
            f"alice {L1}": [*IN, "callAnswered", "callTransferred", "callEnded:COMPLETED", "callCompleted"],
            f"bob {L1}": IN + DONE,
        },
    ),
    (
        "attended transfer: both of alice's legs transferred",
        ami_calls.attended_transferred,
        {
            f"alice {L1}": [*IN, "callAnswered", "callTransferred", "callEnded:COMPLETED", "callCompleted"],
            "alice 1701480000.20": [
                "outgoingCall",
                "callAnswered",
                "callTransferred",
                "callEnded:COMPLETED",
                "callCompleted",
            ],
            "bob 1701480000.20": IN + DONE,
        },
    ),
    (
        "alice dials bob's number: her outbound call, his incoming one, answered when he answers",
        ami_calls.click_to_dial_of_a_user,
        {"alice gwdial-0123456789abcdef": ["outgoingCall", *DONE], "bob gwdial-0123456789abcdef": IN + DONE},
    ),
]


@pytest.mark.parametrize(("name", "script", "expected"), SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_each_user_is_told_the_scenario(name: str, script: Script, expected: dict[str, list[str]]) -> None:
    assert told(play(script())) == expected


def test_an_inbound_trunk_call_shows_the_caller_and_the_did() -> None:
    assert starts(play(ami_calls.inbound_answered())) == {f"alice {L1}": (ami_calls.CALLER, ami_calls.DID)}


def test_an_outbound_trunk_call_shows_the_number_dialled_not_the_trunks() -> None:
    assert starts(play(ami_calls.outbound())) == {f"alice {L1}": ("+15555550101", "+12125550123")}


def test_a_transferred_caller_shows_on_the_new_phone_with_their_own_number() -> None:
    assert starts(play(ami_calls.blind_transferred()))[f"bob {L1}"] == (ami_calls.CALLER, ami_calls.DID)


def test_an_internal_call_shows_the_callers_extension() -> None:
    assert starts(play(ami_calls.attended_transferred()))["bob 1701480000.20"] == ("1001", "+15555550102")


def test_the_answered_elsewhere_ring_carries_the_code_the_model_keeps_canceled_by() -> None:
    ended = [s for s in play(ami_calls.ring_group("1002")) if s.user_id == "alice" and s.end_status]
    assert [(s.end_status, s.sip_code) for s in ended] == [("CANCELED", 200)]


def test_every_event_played_twice_tells_each_user_the_same() -> None:
    script = ami_calls.ring_group("1002")
    doubled = [fields for fields in script for _ in range(2)]
    assert told(play(doubled)) == told(play(script))


def test_a_phone_of_another_tenant_on_the_same_extension_is_not_rung() -> None:
    signals = play(ami_calls.blind_transferred())
    assert "carol" not in {s.user_id for s in signals}


def test_an_extension_no_user_has_makes_no_signal() -> None:
    script = [
        fields | {"Channel": fields["Channel"].replace("1001", "1009")} if "Channel" in fields else fields
        for fields in ami_calls.inbound_answered()
    ]
    assert play(script) == []


def test_an_event_with_a_broken_linkedid_is_refused() -> None:
    broken = ami_calls.inbound_answered()[0] | {"Linkedid": "x y\x00"}
    with pytest.raises(events.BadEvent):
        play([broken])


def test_a_timestamp_sets_the_signal_time() -> None:
    first = ami_calls.inbound_answered()
    stamped = [fields | {"Timestamp": "1701480000.250000"} for fields in first]
    assert {s.at_ms for s in play(stamped)} == {1701480000250}


def test_a_ringing_phone_shows_the_connected_line_it_is_shown_not_the_calls_first_channel() -> None:
    script = ami_calls.inbound_answered()
    for fields in script:
        if fields.get("Channel", "").startswith("PJSIP/1001"):
            fields["ConnectedLineNum"] = "+12125550999"
    assert starts(play(script))[f"alice {L1}"][0] == "+12125550999"
