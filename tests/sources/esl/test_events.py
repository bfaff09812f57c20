"""Event socket scripts of real scenarios, through the pure reducer and the model: what each user is told."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from gateway.model import Signal
from gateway.sources.esl import events
from gateway.sources.esl.protocol import Event
from gateway.sources.pbxcalls import CallBook
from gateway.users.directory import Directory, User
from tests.support import esl_calls
from tests.support.fake_esl import Headers
from tests.support.told import starts, told

ALICE = User("alice", "alice", 100, "x", numbers=("+15555550101",), extension="1001")
BOB = User("bob", "bob", 100, "x", numbers=("+15555550102",), extension="1002")
A = esl_calls.A


def play(script: list[Headers]) -> list[Signal]:
    book = CallBook("esl", 100, events.dial_of)
    directory = Directory([ALICE, BOB])
    out: list[Signal] = []
    for now, headers in enumerate(script, 1):
        event = Event({k.lower(): v for k, v in headers.items()})
        out += events.apply(book, event, directory, 1000 * now)
    return out


IN = ["incomingCall"]
DONE = ["callAnswered", "callEnded:COMPLETED", "callCompleted"]
MOVED = ["callAnswered", "callTransferred", "callEnded:COMPLETED", "callCompleted"]
Script = Callable[[], list[Headers]]
SECOND = "c3c3c3c3-0000-4000-8000-000000000020"
DIALLED = esl_calls.DIAL_UUID

SCENARIOS: list[tuple[str, Script, dict[str, list[str]]]] = [
    ("inbound answered", esl_calls.inbound_answered, {f"alice {A}": IN + DONE}),
    (
        "ring group answered by bob: alice lost the race, not missed",
        lambda: esl_calls.ring_group("1002"),
        {f"alice {A}": [*IN, "callEnded:CANCELED", "callCompleted"], f"bob {A}": IN + DONE},
    ),
    (
        "ring group nobody answered",
        lambda: esl_calls.ring_group(None),
        {
            f"alice {A}": [*IN, "callEnded:MISSED", "callCompleted"],
            f"bob {A}": [*IN, "callEnded:MISSED", "callCompleted"],
        },
    ),
    (
        "caller gave up",
        lambda: esl_calls.inbound_unanswered("ORIGINATOR_CANCEL"),
        {f"alice {A}": [*IN, "callEnded:MISSED", "callCompleted"]},
    ),
    (
        "busy",
        lambda: esl_calls.inbound_unanswered("USER_BUSY"),
        {f"alice {A}": [*IN, "callEnded:BUSY", "callCompleted"]},
    ),
    (
        "rejected",
        lambda: esl_calls.inbound_unanswered("CALL_REJECTED"),
        {f"alice {A}": [*IN, "callEnded:REJECTED", "callCompleted"]},
    ),
    ("outbound answered", esl_calls.outbound, {f"alice {A}": ["outgoingCall", *DONE]}),
    (
        "outbound busy",
        lambda: esl_calls.outbound("USER_BUSY"),
        {f"alice {A}": ["outgoingCall", "callEnded:BUSY", "callCompleted"]},
    ),
    (
        "outbound no answer",
        lambda: esl_calls.outbound("NO_ANSWER"),
        {f"alice {A}": ["outgoingCall", "callEnded:NO_ANSWER", "callCompleted"]},
    ),
    (
        "outbound to a number that does not exist",
        lambda: esl_calls.outbound("UNALLOCATED_NUMBER"),
        {f"alice {A}": ["outgoingCall", "callEnded:FAILED", "callCompleted"]},
    ),
    (
        "blind transfer by REFER",
        esl_calls.blind_transferred,
        {f"alice {A}": IN + MOVED, f"bob {A}": IN + DONE},
    ),
    (
        "attended transfer",
        esl_calls.attended_transferred,
        {f"alice {A}": IN + MOVED, f"alice {SECOND}": ["outgoingCall", *MOVED], f"bob {SECOND}": IN + DONE},
    ),
    (
        "alice dials bob's number: her outbound call, his incoming one, answered when he answers",
        esl_calls.click_to_dial_of_a_user,
        {f"alice {DIALLED}": ["outgoingCall", *DONE], f"bob {DIALLED}": IN + DONE},
    ),
]


@pytest.mark.parametrize(("name", "script", "expected"), SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_each_user_is_told_the_scenario(name: str, script: Script, expected: dict[str, list[str]]) -> None:
    assert told(play(script())) == expected


def test_an_inbound_call_shows_the_caller_and_the_did() -> None:
    assert starts(play(esl_calls.inbound_answered())) == {f"alice {A}": (esl_calls.CALLER, esl_calls.DID)}


def test_an_outbound_gateway_call_shows_the_number_dialled() -> None:
    assert starts(play(esl_calls.outbound())) == {f"alice {A}": ("+15555550101", "+12125550123")}


def test_events_played_twice_tell_the_same() -> None:
    script = esl_calls.ring_group("1002")
    assert told(play([h for h in script for _ in range(2)])) == told(play(script))


def test_show_channels_rows_learn_a_call_in_progress() -> None:
    book = CallBook("esl", 100, events.dial_of)
    trunk, alice = esl_calls.trunk_in(), esl_calls.phone("1001", 2)
    alice.answered = True
    body = json.dumps({"row_count": 4, "rows": [trunk.row(), alice.row(), "junk", {"uuid": "bad id"}]})
    signals = events.listed(book, body, Directory([ALICE]), 5)
    assert told(signals) == {f"alice {A}": ["incomingCall", "callAnswered"]}


def test_show_channels_that_is_not_json_is_refused() -> None:
    with pytest.raises(events.BadEvent):
        events.listed(CallBook("esl", 100, events.dial_of), "-ERR no reply", Directory(), 5)


def test_the_dial_uuid_carries_the_dial_id_and_nothing_else_is_taken_for_one() -> None:
    uuid = events.dial_uuid("0123456789abcdef")
    assert (events.dial_of(uuid), events.dial_of(A)) == ("0123456789abcdef", None)
    assert len(uuid) == 36 and uuid.count("-") == 4
