"""The call model: signals in, SDK events out, whatever the order."""

from __future__ import annotations

import itertools
from dataclasses import FrozenInstanceError, replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.model import (
    EVENT_ORDER,
    CallState,
    Direction,
    EndStatus,
    EngagementConflict,
    Phase,
    Signal,
    advance,
    attach_engagement,
    combine,
    normalise_end_status,
    restore,
)
from tests.support.calls import run, sig


def facts(state: CallState) -> CallState:
    """Everything but the emission log, which depends on arrival order by nature."""
    return replace(state, emitted=())


def types(events: list[tuple[str, dict[str, object]]]) -> list[str]:
    return [t for t, _ in events]


def test_inbound_call_emits_ringing_answered_ended_completed_in_order() -> None:
    _, events = run(
        [
            sig(Phase.RINGING, 1000, from_number="+15555550199", to_number="+15555550101"),
            sig(Phase.ANSWERED, 3000),
            sig(Phase.ENDED, 63000, end_status=EndStatus.COMPLETED),
        ]
    )
    assert types(events) == ["incomingCall", "callAnswered", "callEnded", "callCompleted"]


def test_incoming_call_payload_matches_the_sdk_type() -> None:
    _, events = run([sig(Phase.RINGING, 1000, from_number="+15555550199", to_number="+15555550101")])
    assert events == [
        (
            "incomingCall",
            {
                "externalCallId": "t:c1",
                "fromNumber": "+15555550199",
                "toNumber": "+15555550101",
                "callStartTime": 1000,
                "createEngagement": True,
            },
        )
    ]


def test_outbound_call_starts_with_outgoing_call() -> None:
    _, events = run([sig(Phase.RINGING, 1, direction=Direction.OUTBOUND, to_number="+15555550199")])
    assert types(events) == ["outgoingCall"]


def test_call_completed_carries_engagement_properties_with_duration_in_ms() -> None:
    _state, events = run(
        [
            sig(Phase.RINGING, 1000, from_number="+15555550199", to_number="+15555550101"),
            sig(Phase.ANSWERED, 3000),
            sig(Phase.ENDED, 63500),
        ]
    )
    completed = dict(events)["callCompleted"]
    assert completed["engagementProperties"] == {
        "hs_timestamp": 1000,
        "hs_call_duration": "60500",
        "hs_call_direction": "INBOUND",
        "hs_call_status": "COMPLETED",
        "hs_call_title": "Inbound call from +15555550199",
        "hs_call_from_number": "+15555550199",
        "hs_call_to_number": "+15555550101",
    }
    assert dict(events)["callEnded"] == {"externalCallId": "t:c1", "callEndStatus": "COMPLETED"}


def test_an_outbound_call_is_logged_as_outbound_to_the_number_called() -> None:
    _, events = run(
        [
            sig(Phase.RINGING, 1000, direction=Direction.OUTBOUND, from_number="+15555550101"),
            sig(Phase.ANSWERED, 2000, direction=Direction.OUTBOUND, to_number="+15555550199"),
            sig(Phase.ENDED, 12000, direction=Direction.OUTBOUND),
        ]
    )
    assert dict(events)["callCompleted"]["engagementProperties"] == {
        "hs_timestamp": 1000,
        "hs_call_duration": "10000",
        "hs_call_direction": "OUTBOUND",
        "hs_call_status": "COMPLETED",
        "hs_call_title": "Outbound call to +15555550199",
        "hs_call_from_number": "+15555550101",
        "hs_call_to_number": "+15555550199",
    }


def test_an_outbound_call_starts_with_both_numbers_as_the_sdk_types_them() -> None:
    _, events = run([sig(Phase.RINGING, 5, direction=Direction.OUTBOUND, from_number="+1", to_number="+2")])
    assert events == [
        (
            "outgoingCall",
            {
                "externalCallId": "t:c1",
                "fromNumber": "+1",
                "toNumber": "+2",
                "callStartTime": 5,
                "createEngagement": True,
            },
        )
    ]


def test_a_call_without_numbers_starts_with_empty_ones_and_logs_none() -> None:
    _, events = run([sig(Phase.RINGING, 0), sig(Phase.ENDED, 1)])
    assert (dict(events)["incomingCall"]["fromNumber"], dict(events)["incomingCall"]["toNumber"]) == ("", "")
    props = dict(events)["callCompleted"]["engagementProperties"]
    assert "hs_call_from_number" not in props and "hs_call_to_number" not in props  # type: ignore[operator]
    assert props["hs_call_title"] == "Inbound call from unknown number"  # type: ignore[index]


def test_the_callers_name_makes_the_title() -> None:
    _, events = run([sig(Phase.RINGING, 0, from_number="+1", remote_name="Ann Smith"), sig(Phase.ENDED, 1)])
    props = dict(events)["callCompleted"]["engagementProperties"]
    assert props["hs_call_title"] == "Inbound call from Ann Smith"  # type: ignore[index]


def test_an_outbound_title_names_the_called_party_not_the_user() -> None:
    _, events = run(
        [
            sig(Phase.RINGING, 0, direction=Direction.OUTBOUND, from_number="+1", to_number="+2"),
            sig(Phase.ENDED, 1, direction=Direction.OUTBOUND),
        ]
    )
    props = dict(events)["callCompleted"]["engagementProperties"]
    assert props["hs_call_title"] == "Outbound call to +2"  # type: ignore[index]


def test_answered_and_transferred_name_their_call() -> None:
    _, events = run([sig(Phase.RINGING, 0), sig(Phase.ANSWERED, 1), sig(Phase.ENDED, 2, transferred=True)])
    assert dict(events)["callAnswered"] == {"externalCallId": "t:c1"}
    assert dict(events)["callTransferred"] == {"externalCallId": "t:c1"}


def test_an_unanswered_call_lasts_zero_ms() -> None:
    _, events = run([sig(Phase.RINGING, 0), sig(Phase.ENDED, 30000)])
    props = dict(events)["callCompleted"]["engagementProperties"]
    assert props["hs_call_duration"] == "0"  # type: ignore[index]


@pytest.mark.parametrize(
    ("status", "wire"),
    [
        (EndStatus.COMPLETED, "COMPLETED"),
        (EndStatus.FAILED, "FAILED"),
        (EndStatus.CANCELED, "CANCELED"),
        (EndStatus.BUSY, "BUSY"),
        (EndStatus.NO_ANSWER, "NO_ANSWER"),
        (EndStatus.REJECTED, "REJECTED"),
        (EndStatus.MISSED, "MISSED"),
    ],
)
def test_end_statuses_are_written_as_the_sdk_spells_them(status: EndStatus, wire: str) -> None:
    assert status.value == wire


def test_an_answer_stamped_after_the_end_makes_no_negative_duration() -> None:
    state, _ = run([sig(Phase.RINGING, 0), sig(Phase.ENDED, 5), sig(Phase.ANSWERED, 9)])
    assert state.call_duration_ms() == 0


def test_an_answer_and_end_in_the_same_millisecond_last_zero() -> None:
    state, _ = run([sig(Phase.RINGING, 0), sig(Phase.ANSWERED, 5), sig(Phase.ENDED, 5)])
    assert state.call_duration_ms() == 0


def test_the_earliest_of_two_ends_is_the_calls_end() -> None:
    late, early = (
        sig(Phase.ENDED, 9, end_status=EndStatus.BUSY),
        sig(Phase.ENDED, 5, end_status=EndStatus.FAILED),
    )
    for order in ([late, early], [early, late]):
        state, _ = run([sig(Phase.RINGING, 0), *order])
        assert state.end is not None and (state.end.at_ms, state.end.status) == (5, EndStatus.FAILED)


@pytest.mark.parametrize(
    "other",
    [
        {"end_status": EndStatus.FAILED},
        {"end_status": None},
        {"sip_code": 486},
        {"transferred": True},
    ],
)
def test_two_ends_in_the_same_millisecond_agree_in_either_order(other: dict[str, object]) -> None:
    first = sig(Phase.ENDED, 5, end_status=EndStatus.BUSY, sip_code=None)
    changes: dict[str, Any] = {"end_status": EndStatus.BUSY, **other}
    second = sig(Phase.ENDED, 5, **changes)
    a, _ = run([sig(Phase.RINGING, 0), first, second])
    b, _ = run([sig(Phase.RINGING, 0), second, first])
    assert a.end == b.end


def test_signals_events_and_states_cannot_be_changed_once_made() -> None:
    state, _ = run([sig(Phase.RINGING, 0)])
    event = advance(None, sig(Phase.RINGING, 0))[1][0]
    for made in (state, event, sig(Phase.RINGING, 0)):
        with pytest.raises(FrozenInstanceError):
            made.user_id = "mallory"  # type: ignore[misc,union-attr]


@pytest.mark.parametrize(
    ("direction", "wire"), [(Direction.INBOUND, "inbound"), (Direction.OUTBOUND, "outbound")]
)
def test_directions_are_written_as_the_page_and_ingest_spell_them(direction: Direction, wire: str) -> None:
    assert direction.value == wire


def test_call_completed_names_its_call_and_carries_its_properties_only() -> None:
    _, events = run([sig(Phase.RINGING, 0), sig(Phase.ENDED, 1)])
    completed = dict(events)["callCompleted"]
    assert set(completed) == {"externalCallId", "engagementProperties"}
    assert completed["externalCallId"] == "t:c1"


def test_source_reported_duration_wins_over_timestamps() -> None:
    _, events = run(
        [sig(Phase.RINGING, 0), sig(Phase.ENDED, 90000, end_status=EndStatus.COMPLETED, duration_ms=42000)]
    )
    props = dict(events)["callCompleted"]["engagementProperties"]
    assert props["hs_call_duration"] == "42000"  # type: ignore[index]


def test_engagement_id_is_carried_in_ended_and_completed() -> None:
    state, _ = run([sig(Phase.RINGING, 0)])
    state = attach_engagement(state, 777)
    state, events = advance(state, sig(Phase.ENDED, 5000))
    by_type = {e.type: e.payload for e in events}
    assert by_type["callEnded"]["engagementId"] == 777
    assert by_type["callCompleted"]["engagementId"] == 777


def test_a_second_engagement_id_for_the_same_call_is_refused() -> None:
    state, _ = run([sig(Phase.RINGING, 0)])
    state = attach_engagement(state, 1)
    assert attach_engagement(state, 1).engagement_id == 1
    with pytest.raises(EngagementConflict):
        attach_engagement(state, 2)


def test_duplicate_signals_emit_nothing_more() -> None:
    ring = sig(Phase.RINGING, 0)
    state, first = advance(None, ring)
    state, again = advance(state, ring)
    assert types([(e.type, e.payload) for e in first]) == ["incomingCall"]
    assert again == []


def test_end_before_ring_still_emits_a_complete_valid_sequence() -> None:
    _, events = run([sig(Phase.ENDED, 5000, end_status=EndStatus.BUSY), sig(Phase.RINGING, 1000)])
    assert types(events) == ["incomingCall", "callEnded", "callCompleted"]


def test_answer_arriving_after_the_end_emits_nothing() -> None:
    _, events = run([sig(Phase.RINGING, 0), sig(Phase.ENDED, 9000), sig(Phase.ANSWERED, 2000)])
    assert "callAnswered" not in types(events)


def test_transfer_is_reported_as_a_transfer_before_the_end() -> None:
    _, events = run([sig(Phase.RINGING, 0), sig(Phase.ANSWERED, 1), sig(Phase.ENDED, 2, transferred=True)])
    assert types(events)[-3:] == ["callTransferred", "callEnded", "callCompleted"]


@pytest.mark.parametrize(
    ("direction", "answered", "proposed", "expected"),
    [
        (Direction.INBOUND, True, EndStatus.COMPLETED, EndStatus.COMPLETED),
        (Direction.INBOUND, True, None, EndStatus.COMPLETED),
        (Direction.INBOUND, True, EndStatus.CANCELED, EndStatus.COMPLETED),
        (Direction.INBOUND, True, EndStatus.FAILED, EndStatus.FAILED),
        (Direction.INBOUND, False, EndStatus.CANCELED, EndStatus.MISSED),
        (Direction.INBOUND, False, EndStatus.NO_ANSWER, EndStatus.MISSED),
        (Direction.INBOUND, False, EndStatus.COMPLETED, EndStatus.MISSED),
        (Direction.INBOUND, False, None, EndStatus.MISSED),
        (Direction.INBOUND, False, EndStatus.BUSY, EndStatus.BUSY),
        (Direction.INBOUND, False, EndStatus.REJECTED, EndStatus.REJECTED),
        (Direction.INBOUND, False, EndStatus.FAILED, EndStatus.FAILED),
        (Direction.OUTBOUND, False, EndStatus.CANCELED, EndStatus.CANCELED),
        (Direction.OUTBOUND, False, None, EndStatus.CANCELED),
        (Direction.OUTBOUND, False, EndStatus.COMPLETED, EndStatus.CANCELED),
        (Direction.OUTBOUND, False, EndStatus.NO_ANSWER, EndStatus.NO_ANSWER),
        (Direction.OUTBOUND, False, EndStatus.BUSY, EndStatus.BUSY),
        (Direction.OUTBOUND, False, EndStatus.REJECTED, EndStatus.REJECTED),
        (Direction.OUTBOUND, False, EndStatus.FAILED, EndStatus.FAILED),
        (Direction.OUTBOUND, False, EndStatus.MISSED, EndStatus.CANCELED),
    ],
)
def test_end_status_is_made_consistent_with_the_call(
    direction: Direction, answered: bool, proposed: EndStatus | None, expected: EndStatus
) -> None:
    assert normalise_end_status(direction, answered, proposed) is expected


@pytest.mark.parametrize(
    ("proposed", "answered", "expected"),
    [
        (EndStatus.CANCELED, False, EndStatus.CANCELED),
        (None, False, EndStatus.MISSED),
        (EndStatus.NO_ANSWER, False, EndStatus.MISSED),
        (EndStatus.CANCELED, True, EndStatus.COMPLETED),
    ],
)
def test_a_ring_answered_elsewhere_stays_canceled_only_when_canceled_was_proposed(
    proposed: EndStatus | None, answered: bool, expected: EndStatus
) -> None:
    got = normalise_end_status(Direction.INBOUND, answered, proposed, answered_elsewhere=True)
    assert got is expected


@pytest.mark.parametrize(
    ("status", "hs_status"),
    [(EndStatus.REJECTED, "BUSY"), (EndStatus.BUSY, "BUSY"), (EndStatus.FAILED, "FAILED")],
)
def test_hs_call_status_uses_only_hubspots_values(status: EndStatus, hs_status: str) -> None:
    _, events = run([sig(Phase.RINGING, 0), sig(Phase.ENDED, 1, end_status=status)])
    props = dict(events)["callCompleted"]["engagementProperties"]
    assert props["hs_call_status"] == hs_status  # type: ignore[index]


@pytest.mark.parametrize(
    ("status", "hs_status"),
    [
        (EndStatus.CANCELED, "CANCELED"),
        (EndStatus.NO_ANSWER, "NO_ANSWER"),
        (EndStatus.COMPLETED, "COMPLETED"),
    ],
)
def test_an_outbound_calls_end_reaches_hubspot_as_its_call_status(status: EndStatus, hs_status: str) -> None:
    out = Direction.OUTBOUND
    answered = [sig(Phase.ANSWERED, 1, direction=out)] if status is EndStatus.COMPLETED else []
    _, events = run(
        [
            sig(Phase.RINGING, 0, direction=out),
            *answered,
            sig(Phase.ENDED, 2, direction=out, end_status=status),
        ]
    )
    props = dict(events)["callCompleted"]["engagementProperties"]
    assert props["hs_call_status"] == hs_status  # type: ignore[index]


def test_missed_call_is_logged_as_no_answer_in_hubspot() -> None:
    _, events = run([sig(Phase.RINGING, 0), sig(Phase.ENDED, 1, end_status=EndStatus.CANCELED)])
    assert dict(events)["callEnded"]["callEndStatus"] == "MISSED"
    props = dict(events)["callCompleted"]["engagementProperties"]
    assert props["hs_call_status"] == "NO_ANSWER"  # type: ignore[index]


def test_signal_for_another_call_is_refused() -> None:
    state, _ = run([sig(Phase.RINGING, 0)])
    other = Signal("t", "c2", "u1", Direction.INBOUND, Phase.ENDED, 1)
    with pytest.raises(ValueError):
        advance(state, other)


# -- properties -------------------------------------------------------------

phases = st.sampled_from(list(Phase))
statuses = st.none() | st.sampled_from(list(EndStatus))
numbers = st.none() | st.sampled_from(["+15555550100", "+15555550199", "1001"])
signals = st.builds(
    Signal,
    source=st.just("t"),
    call_id=st.just("c1"),
    user_id=st.just("u1"),
    direction=st.sampled_from(list(Direction)),
    phase=phases,
    # Few distinct times, so that signals often tie and the tie-breaks are tested.
    at_ms=st.integers(0, 40),
    from_number=numbers,
    to_number=numbers,
    remote_name=st.none() | st.sampled_from(["Ann", "Bo"]),
    end_status=statuses,
    sip_code=st.none() | st.sampled_from([200, 486, 487, 603]),
    duration_ms=st.none() | st.integers(0, 10_000),
    transferred=st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(signals, min_size=1, max_size=8), st.randoms(use_true_random=False), st.data())
def test_any_duplication_or_reordering_ends_in_the_same_facts(
    batch: list[Signal], rnd: object, data: st.DataObject
) -> None:
    reference, _ = run(batch)
    shuffled = data.draw(st.permutations(batch + data.draw(st.lists(st.sampled_from(batch), max_size=6))))
    other, _ = run(list(shuffled))
    assert facts(other) == facts(reference)


@settings(max_examples=300, deadline=None)
@given(st.lists(signals, min_size=1, max_size=12))
def test_events_are_never_repeated_and_always_in_sdk_order(batch: list[Signal]) -> None:
    state, events = run(batch)
    emitted = types(events)
    assert len(emitted) == len(set(emitted))
    positions = [EVENT_ORDER.index(t) for t in emitted]
    assert positions == sorted(positions)
    assert emitted[0] in ("incomingCall", "outgoingCall")
    assert "incomingCall" not in emitted or "outgoingCall" not in emitted
    if state.end is not None:
        assert emitted[-2:] == ["callEnded", "callCompleted"]
    assert list(state.emitted) == emitted


@settings(max_examples=200, deadline=None)
@given(st.lists(signals, min_size=1, max_size=8))
def test_every_end_status_sent_is_one_the_sdk_accepts(batch: list[Signal]) -> None:
    _, events = run(batch)
    for kind, payload in events:
        if kind == "callEnded":
            assert payload["callEndStatus"] in {s.value for s in EndStatus}


def test_all_orders_of_a_full_call_agree_on_facts() -> None:
    call = [
        sig(Phase.RINGING, 0, from_number="+15555550199"),
        sig(Phase.ANSWERED, 10),
        sig(Phase.ENDED, 70, end_status=EndStatus.COMPLETED),
    ]
    found = {facts(run(list(order))[0]) for order in itertools.permutations(call)}
    assert len(found) == 1


# -- putting back what a store forgot (docs/design.md#when-redis-loses-data) --


@settings(max_examples=200, deadline=None)
@given(st.lists(signals, min_size=1, max_size=6), st.lists(signals, min_size=1, max_size=6))
def test_combining_two_states_of_a_call_is_commutative_and_idempotent(
    one: list[Signal], other: list[Signal]
) -> None:
    a, _ = run(one)
    b, _ = run(other)
    assert combine(a, b) == combine(b, a)
    assert combine(a, a) == a


@settings(max_examples=200, deadline=None)
@given(st.lists(signals, min_size=1, max_size=10), st.data())
def test_an_earlier_version_of_a_call_adds_nothing_to_a_later_one(
    batch: list[Signal], data: st.DataObject
) -> None:
    later = data.draw(st.integers(1, len(batch)))
    earlier = data.draw(st.integers(1, later))
    newer, _ = run(batch[:later])
    older, _ = run(batch[:earlier])
    assert combine(newer, older) == newer
    assert restore(older, newer) == (newer, [])


@pytest.mark.parametrize(
    ("one", "other", "kept"),
    [
        (None, "gateway", "gateway"),
        ("gateway", "widget", "widget"),
        ("widget", None, "widget"),
        (None, None, None),
    ],
)
def test_combining_keeps_the_later_logging_path_whichever_version_knew_it(
    one: str | None, other: str | None, kept: str | None
) -> None:
    state, _ = run([sig(Phase.RINGING, 0)])
    a, b = replace(state, logged_by=one), replace(state, logged_by=other)
    assert combine(a, b).logged_by == combine(b, a).logged_by == kept


def test_an_answered_call_restored_into_a_forgetful_store_ends_completed_once() -> None:
    remembered, _ = run([sig(Phase.RINGING, 0), sig(Phase.ANSWERED, 10)])
    restored, events = restore(None, remembered)
    _, more = advance(restored, sig(Phase.ENDED, 70))
    assert events == []
    assert [e.type for e in more] == ["callEnded", "callCompleted"]
    assert more[0].payload["callEndStatus"] == "COMPLETED"


def test_a_call_that_went_on_without_the_answer_is_told_nothing_twice() -> None:
    # The store re-made the call from an end alone (announced and ended as
    # missed); a memory of the answer can no longer un-end it, and repeats nothing.
    remembered, _ = run([sig(Phase.RINGING, 0), sig(Phase.ANSWERED, 10)])
    stored, _ = run([sig(Phase.ENDED, 70)])
    restored, events = restore(stored, remembered)
    assert events == []
    assert restored.emitted == ("incomingCall", "callAnswered", "callEnded", "callCompleted")
