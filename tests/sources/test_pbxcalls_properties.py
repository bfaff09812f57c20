"""Property tests of the PBX reducers: repeats and reconnects never tell a call twice.

Any scenario script (tests/support/ami_calls.py, esl_calls.py), with any
events repeated and a reconnect anywhere (the PBX's list of channels in
progress fed in again), tells every user what the plain script tells; with
events lost during the reconnect, each call still starts once and ends at
most once, in the SDK's order.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.model import EVENT_ORDER, Signal
from gateway.sources.ami import events as ami_events
from gateway.sources.ami.protocol import Message
from gateway.sources.esl import events as esl_events
from gateway.sources.esl.protocol import Event
from gateway.sources.pbxcalls import CallBook
from gateway.users.directory import Directory, User
from tests.support import ami_calls, esl_calls
from tests.support.fake_ami import FakeAmi, Fields
from tests.support.fake_esl import FakeEsl, Headers
from tests.support.told import told

USERS = Directory(
    [
        User("alice", "alice", 100, "x", numbers=("+15555550101",), extension="1001"),
        User("bob", "bob", 100, "x", numbers=("+15555550102",), extension="1002"),
    ]
)
AMI_SCRIPTS: list[Callable[[], list[Fields]]] = [
    ami_calls.inbound_answered,
    lambda: ami_calls.ring_group("1002"),
    lambda: ami_calls.ring_group(None),
    lambda: ami_calls.inbound_unanswered("BUSY", "17"),
    ami_calls.outbound,
    ami_calls.blind_transferred,
    ami_calls.attended_transferred,
]
ESL_SCRIPTS: list[Callable[[], list[Headers]]] = [
    esl_calls.inbound_answered,
    lambda: esl_calls.ring_group("1002"),
    lambda: esl_calls.ring_group(None),
    lambda: esl_calls.inbound_unanswered("USER_BUSY"),
    esl_calls.outbound,
    esl_calls.blind_transferred,
    esl_calls.attended_transferred,
]


def ami_play(script: list[Fields], repeats: set[int], reconnect: int | None, lose: int) -> list[Signal]:
    """Play the script; at ``reconnect`` the connection drops, ``lose`` events go by, the list comes."""
    book = CallBook("ami", 100, ami_events.dial_of)
    pbx = FakeAmi()  # keeps the channels the script has up, as Asterisk would list them
    out: list[Signal] = []
    for index, fields in enumerate(script):
        pbx._keep(fields)
        if reconnect is None or not reconnect <= index < reconnect + lose:
            for _ in range(2 if index in repeats else 1):
                out += ami_events.apply(book, ami_message(fields), USERS, 1000 + index)
        if reconnect is not None and index == reconnect + max(lose, 1) - 1:
            book.begin_resync()
            for chan in list(pbx.channels.values()):
                listed = {"Event": "CoreShowChannel", **chan.fields(), "BridgeId": chan.bridge}
                out += ami_events.apply(book, ami_message(listed), USERS, 2000 + index)
            out += book.end_resync(2000 + index, USERS)
    return out


def ami_message(fields: Fields) -> Message:
    return Message({k.lower(): v for k, v in fields.items()})


def esl_play(script: list[Headers], repeats: set[int], reconnect: int | None, lose: int) -> list[Signal]:
    book = CallBook("esl", 100, esl_events.dial_of)
    pbx = FakeEsl()
    out: list[Signal] = []
    for index, headers in enumerate(script):
        pbx._keep(headers)
        if reconnect is None or not reconnect <= index < reconnect + lose:
            for _ in range(2 if index in repeats else 1):
                event = Event({k.lower(): v for k, v in headers.items()})
                out += esl_events.apply(book, event, USERS, 1000 + index)
        if reconnect is not None and index == reconnect + max(lose, 1) - 1:
            book.begin_resync()
            rows = {"rows": [chan.row() for chan in pbx.channels.values()]}
            out += esl_events.listed(book, json.dumps(rows), USERS, 2000 + index)
            out += book.end_resync(2000 + index, USERS)
    return out


def well_formed(told_: dict[str, list[str]]) -> bool:
    for events in told_.values():
        kinds = [e.split(":")[0] for e in events]
        if len(kinds) != len(set(kinds)) or kinds[0] not in ("incomingCall", "outgoingCall"):
            return False
        if kinds != sorted(kinds, key=EVENT_ORDER.index):
            return False
    return True


plays = st.tuples(st.integers(0, len(AMI_SCRIPTS) - 1), st.sets(st.integers(0, 40)), st.integers(0, 40))


@settings(max_examples=150, deadline=None)
@given(plays, st.booleans())
def test_repeats_and_a_reconnect_tell_each_user_what_the_plain_script_tells(
    play: tuple[int, set[int], int], esl: bool
) -> None:
    which, repeats, reconnect = play
    if esl:
        script_e = ESL_SCRIPTS[which]()
        assert told(esl_play(script_e, repeats, reconnect % len(script_e), 0)) == told(
            esl_play(script_e, set(), None, 0)
        )
    else:
        script_a = AMI_SCRIPTS[which]()
        assert told(ami_play(script_a, repeats, reconnect % len(script_a), 0)) == told(
            ami_play(script_a, set(), None, 0)
        )


@settings(max_examples=150, deadline=None)
@given(plays, st.integers(1, 6), st.booleans())
def test_events_lost_in_a_reconnect_still_start_each_call_once_and_end_it_at_most_once(
    play: tuple[int, set[int], int], lose: int, esl: bool
) -> None:
    which, repeats, reconnect = play
    if esl:
        script_e = ESL_SCRIPTS[which]()
        assert well_formed(told(esl_play(script_e, repeats, reconnect % len(script_e), lose)))
    else:
        script_a = AMI_SCRIPTS[which]()
        assert well_formed(told(ami_play(script_a, repeats, reconnect % len(script_a), lose)))
