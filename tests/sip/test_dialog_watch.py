"""EntityWatch: successive dialog-info documents in, model signals out."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, replace
from pathlib import Path
from typing import Any

import pytest

from gateway.model import CallState, Direction, EndStatus, Phase, Signal, advance
from gateway.sources.sip.dialog_watch import EntityWatch, WatchResult, call_key_of
from gateway.sources.sip.dialoginfo import Dialog, DialogInfo, parse_dialog_info

DOCS = Path(__file__).parent / "documents"
ENTITY = "sip:1001@pbx.test"
# The bounds on what one entity may make the gateway hold, written out so
# that moving one is a change these tests notice.
MAX_OPEN_DIALOGS = 256
MAX_REMEMBERED_ENDS = 1024


def info(version: int, *dialogs: Dialog, state: str = "full") -> DialogInfo:
    return DialogInfo(version=version, state=state, entity=ENTITY, dialogs=dialogs)  # type: ignore[arg-type]


def dlg(state: str, dialog_id: str = "d1", **kw: Any) -> Dialog:
    return Dialog(id=dialog_id, state=state, **kw)


def fixture(name: str) -> DialogInfo:
    return parse_dialog_info((DOCS / name).read_bytes())


def phases(signals: list[Signal]) -> list[Phase]:
    return [s.phase for s in signals]


def sdk_events(signals: list[Signal]) -> list[str]:
    states: dict[str, CallState] = {}
    out: list[str] = []
    for s in signals:
        state, events = advance(states.get(s.call_key), s)
        states[s.call_key] = state
        out.extend(e.type for e in events)
    return out


# -- phases ----------------------------------------------------------------------


def test_early_dialog_signals_ringing() -> None:
    w = EntityWatch("alice")
    result = w.apply(info(1, dlg("early", direction="recipient")), 1000)
    assert phases(result.signals) == [Phase.RINGING]
    assert result.signals[0].direction is Direction.INBOUND
    assert result.signals[0].at_ms == 1000


def test_trying_and_proceeding_are_ringing_too() -> None:
    w = EntityWatch("alice")
    assert phases(w.apply(info(1, dlg("trying", direction="initiator")), 1).signals) == [Phase.RINGING]
    assert phases(w.apply(info(2, dlg("proceeding", direction="initiator")), 2).signals) == []


def test_confirmed_dialog_signals_answered() -> None:
    w = EntityWatch("alice")
    w.apply(info(1, dlg("early", direction="recipient")), 1000)
    result = w.apply(info(2, dlg("confirmed", direction="recipient")), 3000)
    assert phases(result.signals) == [Phase.ANSWERED]


def test_terminated_after_bye_signals_completed() -> None:
    w = EntityWatch("alice")
    w.apply(info(1, dlg("early", direction="recipient")), 1000)
    w.apply(info(2, dlg("confirmed", direction="recipient")), 3000)
    (ended,) = w.apply(info(3, dlg("terminated", direction="recipient", event="remote-bye")), 9000).signals
    assert (ended.phase, ended.end_status, ended.transferred) == (Phase.ENDED, EndStatus.COMPLETED, False)


def test_terminated_carries_sip_code_and_status_from_the_table() -> None:
    w = EntityWatch("alice")
    w.apply(info(1, dlg("trying", direction="initiator")), 1000)
    (ended,) = w.apply(
        info(2, dlg("terminated", direction="initiator", event="rejected", code=486)), 2000
    ).signals
    assert (ended.end_status, ended.sip_code) == (EndStatus.BUSY, 486)


def test_replaced_dialog_ends_as_a_transfer_not_a_hang_up() -> None:
    w = EntityWatch("alice")
    signals = [
        *w.apply(info(1, dlg("confirmed", direction="recipient", call_id="c1")), 1000).signals,
        *w.apply(
            info(2, dlg("terminated", direction="recipient", call_id="c1", event="replaced")), 5000
        ).signals,
    ]
    assert signals[-1].transferred is True
    assert sdk_events(signals) == [
        "incomingCall",
        "callAnswered",
        "callTransferred",
        "callEnded",
        "callCompleted",
    ]


def test_dialog_first_seen_terminated_signals_nothing() -> None:
    w = EntityWatch("alice")
    assert w.apply(fixture("asterisk_idle.xml"), 1000).signals == []


def test_repeated_state_signals_nothing_new() -> None:
    w = EntityWatch("alice")
    w.apply(info(1, dlg("early", direction="recipient")), 1000)
    assert w.apply(info(2, dlg("early", direction="recipient")), 1500).signals == []


def test_only_an_ending_can_be_a_transfer() -> None:
    w = EntityWatch("alice")
    signals = [
        *w.apply(info(1, dlg("early", direction="recipient", call_id="c1")), 1).signals,
        *w.apply(info(2, dlg("confirmed", direction="recipient", call_id="c1")), 2).signals,
    ]
    assert [(s.phase, s.transferred) for s in signals] == [(Phase.RINGING, False), (Phase.ANSWERED, False)]


def test_a_watch_result_cannot_be_changed() -> None:
    result = EntityWatch("alice").apply(info(1, dlg("early")), 1)
    assert isinstance(result, WatchResult)
    with pytest.raises(FrozenInstanceError):
        result.stale = True  # type: ignore[misc]


def test_a_watch_follows_a_subscription_unless_told_otherwise() -> None:
    w = EntityWatch("alice")
    w.apply(info(1, dlg("confirmed", call_id="c1")), 1)
    assert w.mode == "subscription"
    assert phases(w.apply(info(2), 2).signals) == [Phase.ENDED]


# -- versions ----------------------------------------------------------------------


def test_the_version_is_the_last_applied_documents_and_unknown_after_resubscribing() -> None:
    w = EntityWatch("alice")
    assert w.version is None
    w.apply(info(7, dlg("early")), 1)
    w.apply(info(3, dlg("confirmed")), 2)  # stale: not applied
    assert w.version == 7
    w.resubscribed()
    assert w.version is None


def test_document_with_an_old_version_is_stale_and_ignored() -> None:
    w = EntityWatch("alice")
    w.apply(info(5, dlg("early", direction="recipient")), 1000)
    result = w.apply(info(4, dlg("terminated", direction="recipient")), 2000)
    assert (result.stale, result.signals, w.open_calls) == (True, [], 1)


def test_document_repeating_the_last_version_is_stale() -> None:
    w = EntityWatch("alice")
    w.apply(info(5, dlg("early", direction="recipient")), 1000)
    assert w.apply(info(5, dlg("confirmed", direction="recipient")), 2000).stale is True


def test_partial_document_after_a_gap_asks_for_resync_and_still_applies() -> None:
    w = EntityWatch("alice")
    w.apply(info(1, dlg("early", direction="recipient")), 1000)
    result = w.apply(info(3, dlg("confirmed", direction="recipient"), state="partial"), 2000)
    assert (result.resync, phases(result.signals)) == (True, [Phase.ANSWERED])


def test_partial_document_in_sequence_needs_no_resync() -> None:
    w = EntityWatch("alice")
    w.apply(info(1, dlg("early", direction="recipient")), 1000)
    assert w.apply(info(2, dlg("confirmed", direction="recipient"), state="partial"), 2000).resync is False


def test_partial_document_first_in_a_subscription_asks_for_resync() -> None:
    w = EntityWatch("alice")
    assert w.apply(info(7, dlg("early"), state="partial"), 1000).resync is True


def test_full_document_after_a_gap_is_fine() -> None:
    w = EntityWatch("alice")
    w.apply(info(1, dlg("early", direction="recipient")), 1000)
    result = w.apply(info(9, dlg("confirmed", direction="recipient")), 2000)
    assert (result.resync, result.stale, phases(result.signals)) == (False, False, [Phase.ANSWERED])


def test_partial_document_leaves_other_dialogs_alone() -> None:
    w = EntityWatch("alice")
    w.apply(info(1, dlg("confirmed", "a", call_id="ca"), dlg("early", "b", call_id="cb")), 1000)
    result = w.apply(info(2, dlg("terminated", "b", call_id="cb"), state="partial"), 2000)
    assert [(s.call_id, s.phase) for s in result.signals] == [("cb", Phase.ENDED)]
    assert w.open_calls == 1


def test_new_subscription_restarts_versions_but_keeps_calls() -> None:
    w = EntityWatch("alice")
    w.apply(info(40, dlg("confirmed", call_id="c1")), 1000)
    w.resubscribed()
    result = w.apply(info(0, dlg("confirmed", call_id="c1")), 2000)
    assert (result.stale, result.signals) == (False, [])


def test_full_state_after_resubscribing_ends_calls_that_ended_meanwhile() -> None:
    w = EntityWatch("alice")
    w.apply(info(40, dlg("confirmed", call_id="c1")), 1000)
    w.resubscribed()
    (ended,) = w.apply(info(0), 2000).signals
    assert (ended.call_id, ended.phase, ended.end_status) == ("c1", Phase.ENDED, EndStatus.COMPLETED)


# -- vanished dialogs ----------------------------------------------------------------


def test_confirmed_dialog_missing_from_a_full_document_ends_completed() -> None:
    w = EntityWatch("alice")
    w.apply(info(1, dlg("confirmed", call_id="c1")), 1000)
    (ended,) = w.apply(info(2), 2000).signals
    assert (ended.phase, ended.end_status) == (Phase.ENDED, EndStatus.COMPLETED)


def test_unanswered_inbound_dialog_missing_from_a_full_document_is_missed() -> None:
    w = EntityWatch("alice")
    w.apply(info(1, dlg("early", direction="recipient", call_id="c1")), 1000)
    signals = w.apply(info(2), 2000).signals
    assert (signals[0].end_status, sdk_events(signals)) == (
        None,
        ["incomingCall", "callEnded", "callCompleted"],
    )


def test_withdraw_without_names_ends_every_open_dialog() -> None:
    w = EntityWatch("alice", mode="publication")
    w.apply(info(0, dlg("confirmed", "x", call_id="cx"), dlg("early", "y", call_id="cy")), 1000)
    ended = w.withdraw(5000)
    assert sorted((s.call_id, s.phase) for s in ended) == [("cx", Phase.ENDED), ("cy", Phase.ENDED)]
    assert w.open_calls == 0


def test_withdraw_ignores_dialogs_that_are_not_open() -> None:
    w = EntityWatch("alice", mode="publication")
    w.apply(info(0, dlg("confirmed", "x", call_id="cx")), 1000)
    assert (w.withdraw(5000, ["gone"]), w.open_calls) == ([], 1)


def test_withdraw_ends_open_dialogs_of_a_removed_publication() -> None:
    w = EntityWatch("alice", mode="publication")
    w.apply(info(0, dlg("confirmed", "x", call_id="cx")), 1000)
    (ended,) = w.withdraw(5000, ["x"])
    assert (ended.call_id, ended.phase, ended.at_ms) == ("cx", Phase.ENDED, 5000)


# -- Asterisk ----------------------------------------------------------------------


def test_asterisk_inbound_call_rings_answers_and_completes() -> None:
    w = EntityWatch("alice", local_number="+15555550101")
    signals = [
        *w.apply(fixture("asterisk_idle.xml"), 0).signals,
        *w.apply(fixture("asterisk_ringing.xml"), 1000).signals,
        *w.apply(fixture("asterisk_inuse.xml"), 3000).signals,
        *w.apply(
            DialogInfo(
                version=4, state="full", entity=ENTITY, dialogs=(Dialog(id="1001", state="terminated"),)
            ),
            9000,
        ).signals,
    ]
    assert phases(signals) == [Phase.RINGING, Phase.ANSWERED, Phase.ENDED]
    assert {s.direction for s in signals} == {Direction.INBOUND}
    assert (signals[0].from_number, signals[0].to_number, signals[0].remote_name) == (
        "+15555550199",
        "+15555550101",
        "Carol Caller",
    )
    assert signals[2].end_status is EndStatus.COMPLETED


def test_asterisk_consecutive_calls_on_one_extension_get_different_call_ids() -> None:
    w = EntityWatch("alice")
    first = w.apply(info(1, dlg("early", "1001", direction="recipient")), 1000).signals
    w.apply(info(2, dlg("terminated", "1001")), 2000)
    second = w.apply(info(3, dlg("early", "1001", direction="recipient")), 3000).signals
    assert first[0].call_id != second[0].call_id


def test_a_call_without_call_id_is_named_by_dialog_id_entity_digest_time_and_a_counter() -> None:
    # The digest (sha256 of entity, NUL, dialog id) keeps two entities' extension
    # 1001 apart; the time and the counter keep consecutive calls apart.
    w = EntityWatch("alice")
    (first,) = w.apply(info(1, dlg("early", "1001")), 1000).signals
    w.apply(info(2, dlg("terminated", "1001")), 2000)
    (second,) = w.apply(info(3, dlg("early", "1001")), 3000).signals
    assert (first.call_id, second.call_id) == ("1001.373e2e11e7.1000.1", "1001.373e2e11e7.3000.2")


def test_a_synthetic_call_id_keeps_48_plain_characters_of_the_dialog_id() -> None:
    (ringing,) = EntityWatch("alice").apply(info(1, dlg("early", "ext 1001/" + "y" * 60)), 5).signals
    assert ringing.call_id == "ext_1001_" + "y" * 39 + ".a7411630f4.5.1"


def test_asterisk_direction_seen_while_ringing_is_remembered() -> None:
    w = EntityWatch("alice")
    w.apply(fixture("asterisk_ringing.xml"), 1000)
    (answered,) = w.apply(fixture("asterisk_inuse.xml"), 2000).signals
    assert answered.direction is Direction.INBOUND


def test_asterisk_in_use_without_ringing_is_an_outbound_call() -> None:
    w = EntityWatch("alice")
    w.apply(fixture("asterisk_idle.xml"), 0)
    (answered,) = w.apply(fixture("asterisk_inuse.xml"), 1000).signals
    assert (answered.direction, answered.phase) == (Direction.OUTBOUND, Phase.ANSWERED)


def test_asterisk_ringing_then_idle_is_missed() -> None:
    w = EntityWatch("alice")
    signals = [
        *w.apply(fixture("asterisk_ringing.xml"), 1000).signals,
        *w.apply(info(2, dlg("terminated", "1001")), 5000).signals,
    ]
    assert sdk_events(signals) == ["incomingCall", "callEnded", "callCompleted"]


def test_asterisk_second_call_ringing_during_a_call_does_not_disturb_it() -> None:
    w = EntityWatch("alice")
    w.apply(fixture("asterisk_inuse.xml"), 1000)
    assert w.apply(info(3, dlg("early", "1001", direction="recipient")), 2000).signals == []


def test_withheld_caller_has_no_number() -> None:
    w = EntityWatch("alice")
    (ringing,) = w.apply(fixture("asterisk_ringing_anonymous.xml"), 1000).signals
    assert (ringing.from_number, ringing.remote_name) == (None, None)


def test_a_caller_that_is_no_number_is_sent_as_no_number_and_named_by_its_address() -> None:
    w = EntityWatch("alice")
    early = dlg("early", direction="recipient", remote_identity="sip:carol@example.com")
    (ringing,) = w.apply(info(1, early), 1000).signals
    assert (ringing.from_number, ringing.remote_name) == (None, "carol@example.com")


@pytest.mark.parametrize(
    ("identity", "number", "name"),
    [
        ("sip:@example.com", None, None),
        ("tel:", None, None),
        ("<sip:+15555550199@pbx.test>", "+15555550199", None),
        ("<sip:reception@PBX>", None, "reception@PBX"),
        (" sip:reception@PBX ", None, "reception@PBX"),
    ],
)
def test_a_caller_identity_is_read_without_its_angle_brackets_and_blanks(
    identity: str, number: str | None, name: str | None
) -> None:
    early = dlg("early", direction="recipient", remote_identity=identity)
    (ringing,) = EntityWatch("alice").apply(info(1, early), 1).signals
    assert (ringing.from_number, ringing.remote_name) == (number, name)


def test_a_display_name_wins_over_the_address_of_a_caller_that_is_no_number() -> None:
    w = EntityWatch("alice")
    early = dlg(
        "early", direction="recipient", remote_identity="sip:carol@example.com", remote_display="Carol"
    )
    (ringing,) = w.apply(info(1, early), 1000).signals
    assert ringing.remote_name == "Carol"


def test_another_users_extension_is_sent_as_that_users_number() -> None:
    known = {"sip:1002@pbx.test": "+15555550102"}
    w = EntityWatch("alice", local_number="+15555550101", known_number=lambda uri: known.get(uri))
    early = dlg("early", direction="initiator", remote_identity="sip:1002@pbx.test")
    (ringing,) = w.apply(info(1, early), 1000).signals
    assert (ringing.from_number, ringing.to_number) == ("+15555550101", "+15555550102")


def test_an_extension_nobody_has_is_sent_as_it_is() -> None:
    w = EntityWatch("alice", known_number=lambda uri: None)
    early = dlg("early", direction="recipient", remote_identity="sip:1009@pbx.test")
    (ringing,) = w.apply(info(1, early), 1000).signals
    assert ringing.from_number == "1009"


# -- direction and identities -------------------------------------------------------


def test_an_initiator_dialog_first_seen_early_is_an_outbound_call() -> None:
    (ringing,) = EntityWatch("alice").apply(info(1, dlg("early", direction="initiator")), 1).signals
    assert ringing.direction is Direction.OUTBOUND


def test_a_dialog_without_direction_ringing_is_inbound_and_one_in_progress_outbound() -> None:
    (ringing,) = EntityWatch("alice").apply(info(1, dlg("early")), 1).signals
    (placed,) = EntityWatch("alice").apply(info(1, dlg("trying")), 1).signals
    assert (ringing.direction, placed.direction) == (Direction.INBOUND, Direction.OUTBOUND)


def test_a_direction_learned_from_a_later_document_turns_the_call_round() -> None:
    w = EntityWatch("alice")
    w.apply(info(1, dlg("trying")), 1)
    (answered,) = w.apply(info(2, dlg("confirmed", direction="recipient")), 2).signals
    assert answered.direction is Direction.INBOUND


def test_a_direction_once_given_is_not_changed_by_a_later_document() -> None:
    w = EntityWatch("alice")
    w.apply(info(1, dlg("early", direction="recipient")), 1)
    (answered,) = w.apply(info(2, dlg("confirmed", direction="initiator")), 2).signals
    assert answered.direction is Direction.INBOUND


def test_an_initiator_direction_learned_later_makes_the_call_outbound() -> None:
    w = EntityWatch("alice")
    w.apply(info(1, dlg("early")), 1)
    (answered,) = w.apply(info(2, dlg("confirmed", direction="initiator")), 2).signals
    assert answered.direction is Direction.OUTBOUND


def test_a_direction_learned_later_is_then_kept() -> None:
    w = EntityWatch("alice")
    w.apply(info(1, dlg("trying")), 1)
    w.apply(info(2, dlg("early", direction="recipient")), 2)
    (answered,) = w.apply(info(3, dlg("confirmed", direction="initiator")), 3).signals
    assert answered.direction is Direction.INBOUND


def test_signals_belong_to_the_watched_user_and_source() -> None:
    (ringing,) = EntityWatch("bob", "pbx-2").apply(info(1, dlg("early", direction="recipient")), 1).signals
    assert (ringing.user_id, ringing.source) == ("bob", "pbx-2")


@pytest.mark.parametrize(
    "word", ["anonymous", "invalid", "unknown", "restricted", "unavailable", "Anonymous"]
)
def test_a_withheld_caller_word_gives_no_number_and_no_name(word: str) -> None:
    early = dlg(
        "early", direction="recipient", remote_identity=f"sip:{word}@example.com", remote_display=word
    )
    (ringing,) = EntityWatch("alice").apply(info(1, early), 1).signals
    assert (ringing.from_number, ringing.remote_name) == (None, None)


@pytest.mark.parametrize("user", ["+15555550199", "carol"])
def test_a_caller_at_anonymous_invalid_has_no_number_and_no_name(user: str) -> None:
    early = dlg("early", direction="recipient", remote_identity=f"sip:{user}@anonymous.invalid")
    (ringing,) = EntityWatch("alice").apply(info(1, early), 1).signals
    assert (ringing.from_number, ringing.remote_name) == (None, None)


def test_the_first_identity_seen_stays_the_calls() -> None:
    w = EntityWatch("alice")
    first = dlg("early", "f1", call_id="c", direction="recipient", remote_identity="sip:+15555550199@x")
    second = dlg("early", "f2", call_id="c", direction="recipient", remote_identity="sip:+15555550188@x")
    w.apply(info(1, first), 1)
    (answered,) = w.apply(info(2, first, replace(second, state="confirmed")), 2).signals
    assert answered.from_number == "+15555550199"


def test_the_answered_fork_decides_how_a_call_ended() -> None:
    w = EntityWatch("alice")
    busy = dlg("terminated", "f1", call_id="c", direction="initiator", code=486)
    talked = dlg("confirmed", "f2", call_id="c", direction="initiator")
    w.apply(
        info(
            1,
            dlg("early", "f1", call_id="c", direction="initiator"),
            dlg("early", "f2", call_id="c", direction="initiator"),
        ),
        1,
    )
    w.apply(info(2, busy, talked), 2)
    (ended,) = w.apply(info(3, busy, replace(talked, state="terminated", event="remote-bye")), 3).signals
    assert (ended.phase, ended.end_status) == (Phase.ENDED, EndStatus.COMPLETED)


def test_a_ringing_call_picked_up_elsewhere_ends_as_a_transfer() -> None:
    # Call pickup replaces the early dialog (RFC 3891): the call goes on elsewhere.
    w = EntityWatch("alice")
    w.apply(info(1, dlg("early", call_id="c", direction="recipient")), 1)
    (ended,) = w.apply(
        info(2, dlg("terminated", call_id="c", direction="recipient", event="replaced")), 2
    ).signals
    assert (ended.phase, ended.end_status, ended.transferred) == (Phase.ENDED, None, True)


@pytest.mark.parametrize("busy_first", [True, False])
def test_an_unanswered_call_ends_as_its_most_telling_fork(busy_first: bool) -> None:
    busy = dlg("terminated", "f1", call_id="c", direction="initiator", code=486)
    silent = dlg("terminated", "f2", call_id="c", direction="initiator")
    forks = (busy, silent) if busy_first else (silent, busy)
    w = EntityWatch("alice")
    w.apply(info(1, *(replace(fork, state="early") for fork in forks)), 1)
    (ended,) = w.apply(info(2, *forks), 2).signals
    assert (ended.end_status, ended.sip_code) == (EndStatus.BUSY, 486)


def test_beyond_the_open_dialog_cap_new_dialogs_are_not_followed() -> None:
    w = EntityWatch("alice")
    dialogs = [
        dlg("early", f"d{i}", call_id=f"c{i}", direction="recipient") for i in range(MAX_OPEN_DIALOGS + 1)
    ]
    signals = w.apply(info(1, *dialogs), 1).signals
    assert len(signals) == MAX_OPEN_DIALOGS
    assert signals[-1].call_id == f"c{MAX_OPEN_DIALOGS - 1}"


def test_up_to_the_cap_every_remembered_end_is_kept() -> None:
    w = EntityWatch("alice", mode="publication")
    for i in range(MAX_REMEMBERED_ENDS):
        w.apply(info(5, dlg("terminated", f"x{i}", call_id=f"x{i}")), 1)
    assert w.apply(info(1, dlg("early", "x0", call_id="x0", direction="recipient")), 2).stale


def test_a_dialog_published_again_is_remembered_as_the_newest() -> None:
    w = EntityWatch("alice", mode="publication")
    w.apply(info(5, dlg("terminated", "old", call_id="old")), 1)
    for i in range(MAX_REMEMBERED_ENDS - 1):
        w.apply(info(5, dlg("terminated", f"x{i}", call_id=f"x{i}")), 2)
    w.apply(info(6, dlg("terminated", "old", call_id="old")), 3)
    w.apply(info(5, dlg("terminated", "one-more", call_id="one-more")), 4)
    # x0 is now the oldest and was forgotten; "old" is still remembered.
    assert w.apply(info(1, dlg("early", "old", call_id="old", direction="recipient")), 5).stale
    assert not w.apply(info(1, dlg("early", "x0", call_id="x0", direction="recipient")), 6).stale


def test_the_oldest_remembered_end_is_forgotten_first() -> None:
    w = EntityWatch("alice", mode="publication")
    w.apply(info(5, dlg("terminated", "old", call_id="old")), 1)
    for i in range(MAX_REMEMBERED_ENDS):
        w.apply(info(5, dlg("terminated", f"x{i}", call_id=f"x{i}")), 2)
    # "old" was forgotten: an earlier version of it is no longer stale.
    assert w.apply(info(1, dlg("early", "old", call_id="old", direction="recipient")), 3).signals
    # the newest is still remembered: a late copy of it is stale.
    last = f"x{MAX_REMEMBERED_ENDS - 1}"
    assert w.apply(info(1, dlg("early", last, call_id=last, direction="recipient")), 4).stale


# -- other PBXes -------------------------------------------------------------------


def test_kamailio_call_uses_the_dialog_call_id() -> None:
    w = EntityWatch("alice")
    (ringing,) = w.apply(fixture("kamailio_publish_trying.xml"), 1000).signals
    assert (ringing.call_id, ringing.call_key) == ("a84b4c76e66710@10.0.0.5", "sip:a84b4c76e66710@10.0.0.5")


def test_outbound_numbers_go_from_local_to_remote() -> None:
    w = EntityWatch("alice")
    (ringing,) = w.apply(fixture("kamailio_publish_trying.xml"), 1000).signals
    assert (ringing.direction, ringing.from_number, ringing.to_number) == (
        Direction.OUTBOUND,
        "1001",
        "+442071838750",
    )


def test_the_users_number_is_the_local_identity_else_the_entity() -> None:
    own = dlg("trying", "a", call_id="ca", direction="initiator", local_identity="sip:+15555550101@pbx.test")
    bare = dlg("trying", "b", call_id="cb", direction="initiator")
    signals = EntityWatch("alice").apply(info(1, own, bare), 1).signals
    assert [s.from_number for s in signals] == ["+15555550101", "1001"]


def test_a_local_identity_given_later_replaces_the_entity() -> None:
    w = EntityWatch("alice")
    w.apply(info(1, dlg("trying", call_id="c1", direction="initiator")), 1)
    later = dlg("confirmed", call_id="c1", direction="initiator", local_identity="sip:+15555550101@pbx.test")
    (answered,) = w.apply(info(2, later), 2).signals
    assert answered.from_number == "+15555550101"


def test_a_local_identity_once_given_stays_the_calls() -> None:
    w = EntityWatch("alice")
    first = dlg("trying", call_id="c1", direction="initiator", local_identity="sip:+15555550101@pbx.test")
    w.apply(info(1, first), 1)
    later = replace(first, state="confirmed", local_identity="sip:+15555550188@pbx.test")
    (answered,) = w.apply(info(2, later), 2).signals
    assert answered.from_number == "+15555550101"


def test_local_number_overrides_the_local_identity() -> None:
    w = EntityWatch("alice", local_number="+15555550101")
    (ringing,) = w.apply(fixture("kamailio_publish_trying.xml"), 1000).signals
    assert ringing.from_number == "+15555550101"


def test_several_dialogs_become_several_calls() -> None:
    w = EntityWatch("alice")
    signals = w.apply(fixture("kamailio_presence_two_dialogs.xml"), 1000).signals
    assert [(s.call_id, s.phase, s.from_number, s.remote_name) for s in signals] == [
        ("c1@10.0.0.7", Phase.ANSWERED, "+15555550111", "Erin"),
        ("c2@10.0.0.8", Phase.RINGING, "+15555550122", "Frank"),
    ]


def test_freeswitch_number_is_made_e164_with_the_default_region() -> None:
    w = EntityWatch("alice")
    (ringing,) = w.apply(fixture("freeswitch_early.xml"), 1000).signals
    assert (ringing.from_number, ringing.remote_name) == ("+12125550123", "Dave Dialler")


def test_forks_of_one_call_end_only_when_all_have_ended() -> None:
    w = EntityWatch("alice")
    w.apply(info(1, dlg("early", "f1", call_id="c"), dlg("early", "f2", call_id="c")), 1000)
    answered = w.apply(
        info(2, dlg("confirmed", "f1", call_id="c"), dlg("terminated", "f2", call_id="c")), 2000
    )
    assert phases(answered.signals) == [Phase.ANSWERED]
    (ended,) = w.apply(info(3, dlg("terminated", "f1", call_id="c", event="local-bye")), 9000).signals
    assert (ended.phase, ended.end_status) == (Phase.ENDED, EndStatus.COMPLETED)


# -- publication mode ----------------------------------------------------------------


def test_a_publication_never_asks_to_resync() -> None:
    w = EntityWatch("alice", mode="publication")
    assert w.apply(info(7, dlg("early", call_id="c1"), state="partial"), 1).resync is False


def test_publication_full_document_does_not_end_other_publications() -> None:
    w = EntityWatch("alice", mode="publication")
    w.apply(info(0, dlg("confirmed", "a", call_id="ca")), 1000)
    assert w.apply(info(0, dlg("early", "b", call_id="cb")), 2000).signals[0].phase is Phase.RINGING
    assert w.open_calls == 2


def test_a_publication_repeating_its_dialogs_version_is_applied() -> None:
    w = EntityWatch("alice", mode="publication")
    w.apply(info(4, dlg("early", "a", call_id="ca", direction="recipient")), 1000)
    result = w.apply(info(4, dlg("confirmed", "a", call_id="ca", direction="recipient")), 2000)
    assert (result.stale, phases(result.signals)) == (False, [Phase.ANSWERED])


def test_publication_older_version_of_a_dialog_is_stale() -> None:
    w = EntityWatch("alice", mode="publication")
    w.apply(info(3, dlg("terminated", "a", call_id="ca")), 1000)
    result = w.apply(info(2, dlg("early", "a", call_id="ca")), 2000)
    assert (result.stale, result.signals) == (True, [])


def test_publication_late_copy_of_an_ended_dialog_does_not_ring_again() -> None:
    w = EntityWatch("alice", mode="publication")
    w.apply(info(1, dlg("early", "a", call_id="ca")), 1000)
    w.apply(info(2, dlg("terminated", "a", call_id="ca")), 2000)
    assert w.apply(info(1, dlg("early", "a", call_id="ca")), 3000).signals == []


def test_call_id_with_odd_characters_is_replaced_by_a_stable_digest() -> None:
    odd = "abc/def " + "x" * 200
    first = EntityWatch("alice").apply(info(1, dlg("early", call_id=odd)), 1000).signals[0]
    again = EntityWatch("alice").apply(info(1, dlg("early", call_id=odd)), 5000).signals[0]
    assert first.call_id == again.call_id
    assert first.call_id.startswith("h.") and len(first.call_id) == 34


# -- call ids settled with other instances (dialog_delivery, docs/scaling.md) --------------


def test_only_dialogs_about_to_open_without_a_call_id_are_unnamed() -> None:
    watch = EntityWatch("alice")
    watch.apply(info(1, dlg("early", "open")), 1_000)
    listed = watch.unnamed(
        info(
            2,
            dlg("early", "open"),
            dlg("early", "new"),
            dlg("early", "k", call_id="c1"),
            dlg("terminated", "t"),
        ),
        2_000,
    )
    assert [u.dialog_id for u in listed] == ["new"]


def test_a_dialog_opens_under_the_call_id_settled_for_it_and_gives_its_claim_back_when_it_ends() -> None:
    watch = EntityWatch("alice")
    (unnamed,) = watch.unnamed(info(1, dlg("early", "1001")), 1_000)
    watch.name_calls({"1001": (unnamed.key, "agreed")})
    ringing = watch.apply(info(1, dlg("early", "1001")), 1_000)
    assert [s.call_id for s in ringing.signals] == ["agreed"]
    assert watch.ended_claims() == []
    watch.apply(info(2, dlg("terminated", "1001")), 2_000)
    assert watch.ended_claims() == [(unnamed.key, "agreed")]
    assert watch.ended_claims() == []  # given back once


def test_a_name_settled_for_one_document_is_not_used_by_a_later_one() -> None:
    watch = EntityWatch("alice")
    watch.name_calls({"1001": ("key", "agreed")})
    watch.apply(info(1), 1_000)
    signals = watch.apply(info(2, dlg("early", "1001")), 2_000).signals
    assert signals[0].call_id != "agreed"


def test_the_key_of_a_pbx_call_is_fixed_so_that_two_releases_agree_during_an_upgrade() -> None:
    assert call_key_of(dlg("early", "1001")) == "de98152fd0c007c7df7a871c"
    assert call_key_of(dlg("early", "1001", local_tag="a", remote_tag="b")) == "e92538418b5d4eba1ec36781"
    assert call_key_of(dlg("early", "1001", local_tag="", remote_tag="")) == "de98152fd0c007c7df7a871c"


def test_the_key_of_a_pbx_call_depends_on_its_dialog_id_and_tags_only() -> None:
    assert call_key_of(dlg("early", "1001")) == call_key_of(dlg("confirmed", "1001", direction="recipient"))
    assert call_key_of(dlg("early", "1001")) != call_key_of(dlg("early", "1002"))
    assert call_key_of(dlg("early", "1001")) != call_key_of(dlg("early", "1001", local_tag="a"))


def test_a_first_full_document_ends_the_claimed_calls_it_no_longer_shows_and_only_those() -> None:
    watch = EntityWatch("alice")
    shown = dlg("confirmed", "1001")
    # Keys as claims hold them; "~gone" sorts after every hex key, so the shown one comes first.
    claimed = {call_key_of(shown): "still-up", "~gone": "ended-meanwhile"}
    signals = watch.vanished(info(1, shown), claimed, 5_000)
    assert [(s.call_id, s.phase) for s in signals] == [("ended-meanwhile", Phase.ENDED)]
    assert watch.ended_claims() == [("~gone", "ended-meanwhile")]
    assert watch.vanished(info(2, shown, state="partial"), claimed, 5_000) == []


def test_a_removed_publication_ends_the_recorded_calls_not_open_here_by_their_ids() -> None:
    watch = EntityWatch("alice", mode="publication")
    watch.apply(info(1, dlg("early", "here", call_id="c-here")), 1_000)
    signals = watch.withdraw_recorded(
        2_000, {"here": ("c-here", Direction.INBOUND), "elsewhere": ("c-else", Direction.OUTBOUND)}
    )
    assert sorted((s.call_id, s.direction, s.phase) for s in signals) == [
        ("c-else", Direction.OUTBOUND, Phase.ENDED),
        ("c-here", Direction.INBOUND, Phase.ENDED),
    ]


def test_a_call_known_here_is_not_ended_by_a_first_full_document_that_still_shows_it() -> None:
    watch = EntityWatch("alice")
    (unnamed,) = watch.unnamed(info(1, dlg("early", "1001")), 1_000)
    watch.name_calls({"1001": (unnamed.key, "known")})
    watch.apply(info(1, dlg("early", "1001")), 1_000)
    watch.resubscribed()
    assert watch.vanished(info(1), {unnamed.key: "known", "~other": "gone"}, 2_000)[0].call_id == "gone"


def test_stale_dialogs_of_a_publication_are_not_unnamed_and_the_fresh_ones_after_them_are() -> None:
    watch = EntityWatch("alice", mode="publication")
    watch.apply(info(5, dlg("early", "old")), 1_000)
    watch.apply(info(6, dlg("terminated", "old")), 1_500)
    listed = watch.unnamed(info(4, dlg("early", "old"), dlg("early", "new")), 2_000)
    assert [u.dialog_id for u in listed] == ["new"]
    assert [u.dialog_id for u in watch.unnamed(info(6, dlg("early", "old")), 2_000)] == ["old"]


def test_an_unnamed_dialog_cannot_be_changed_once_listed() -> None:
    (unnamed,) = EntityWatch("alice").unnamed(info(1, dlg("early", "1001")), 1_000)
    with pytest.raises(FrozenInstanceError):
        unnamed.key = "other"  # type: ignore[misc]


def test_the_call_of_an_open_dialog_is_known_and_of_any_other_dialog_not() -> None:
    watch = EntityWatch("alice")
    watch.apply(info(1, dlg("early", "d1", call_id="c1", direction="initiator")), 1_000)
    assert watch.call_of("d1") == ("c1", Direction.OUTBOUND)
    assert watch.call_of("d2") is None


def test_forks_of_one_recorded_call_not_open_here_end_it_once() -> None:
    watch = EntityWatch("alice", mode="publication")
    signals = watch.withdraw_recorded(
        2_000, {"fork1": ("c1", Direction.INBOUND), "fork2": ("c1", Direction.INBOUND)}
    )
    assert [(s.call_id, s.phase) for s in signals] == [("c1", Phase.ENDED)]


def test_a_new_dialog_of_a_publication_at_version_0_is_unnamed() -> None:
    listed = EntityWatch("alice", mode="publication").unnamed(info(0, dlg("early", "first")), 1_000)
    assert [u.dialog_id for u in listed] == ["first"]
