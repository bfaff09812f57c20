"""What the three providers share: payload checks, the implied answer, finding the user."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from gateway.model import Direction, EndStatus, Phase
from gateway.sources.webhooks.common import (
    CallEvent,
    Ignored,
    WebhookError,
    call_id,
    iso_ms,
    optional_text,
    resolve,
    seconds_ms,
    signals_for,
    sip_code,
    with_implied_answer,
)
from gateway.users.directory import Directory, User
from tests.support.cpaas import ALICE, BOB, CALLER, users_directory


def event(**changes: object) -> CallEvent:
    fields: dict[str, object] = {
        "call_id": "c1",
        "direction": Direction.INBOUND,
        "phase": Phase.RINGING,
        "at_ms": 1000,
        "from_number": CALLER,
        "to_number": ALICE,
    }
    fields.update(changes)
    return CallEvent(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["a", "!", "~" * 128, "CA" + "0" * 32])
def test_a_provider_call_id_is_1_to_128_printable_characters(value: str) -> None:
    assert call_id(value, "CallSid") == value


@pytest.mark.parametrize("value", ["", "a" * 129, "ab c", "abc\n", "abc\x7f", "é", None, 5])
def test_anything_else_is_no_call_id(value: object) -> None:
    with pytest.raises(WebhookError) as refused:
        call_id(value, "CallSid")
    assert (refused.value.status, refused.value.reason) == (400, "bad-payload")


@pytest.mark.parametrize(("value", "code"), [("100", 100), (699, 699), ("486", 486)])
def test_a_sip_code_is_100_to_699(value: object, code: int) -> None:
    assert sip_code(value) == code


@pytest.mark.parametrize("value", ["99", "700", "4860", "0486", "", None, True, "²00", 486.0, [486]])
def test_anything_else_is_no_sip_code(value: object) -> None:
    assert sip_code(value) is None


def test_a_duration_in_seconds_becomes_milliseconds() -> None:
    assert (seconds_ms("42", "d"), seconds_ms(7, "d"), seconds_ms(None, "d"), seconds_ms("", "d")) == (
        42_000,
        7_000,
        None,
        None,
    )


@pytest.mark.parametrize("value", ["4.5", "-3", "1" * 10, "x"])
def test_a_duration_that_is_no_whole_number_of_seconds_is_refused(value: str) -> None:
    with pytest.raises(WebhookError, match="whole number of seconds"):
        seconds_ms(value, "CallDuration")


def test_a_long_duration_of_nine_digits_is_read() -> None:
    assert seconds_ms("999999999", "d") == 999_999_999_000


def test_an_iso_time_with_its_zone_is_epoch_milliseconds() -> None:
    assert iso_ms("2026-11-24T23:50:01.123456Z", "t") == 1_795_564_201_123
    assert iso_ms("2026-11-25T00:50:01+01:00", "t") == 1_795_564_201_000


@pytest.mark.parametrize("value", ["2026-11-24T23:50:01", "yesterday", 1764028201])
def test_a_time_without_zone_or_not_iso_is_refused(value: object) -> None:
    with pytest.raises(WebhookError):
        iso_ms(value, "occurred_at")


def test_optional_text_is_none_when_empty_and_bounded_otherwise() -> None:
    assert (optional_text(None, "f"), optional_text("", "f"), optional_text("x" * 5, "f", 5)) == (
        None,
        None,
        "xxxxx",
    )
    with pytest.raises(WebhookError, match="at most 5"):
        optional_text("x" * 6, "f", 5)
    with pytest.raises(WebhookError):
        optional_text(5, "f")


def test_optional_text_is_at_most_256_characters_unless_told() -> None:
    assert optional_text("x" * 256, "f") == "x" * 256
    with pytest.raises(WebhookError, match="at most 256"):
        optional_text("x" * 257, "f")


@pytest.mark.parametrize(
    "read",
    [
        lambda: call_id("", "CallSid"),
        lambda: optional_text(5, "f"),
        lambda: iso_ms(1764028201, "t"),
        lambda: iso_ms("yesterday", "t"),
        lambda: iso_ms("2026-11-24T23:50:01", "t"),
        lambda: seconds_ms("x", "d"),
    ],
    ids=["call-id", "text", "time-not-text", "time-not-iso", "time-without-zone", "duration"],
)
def test_a_malformed_field_is_refused_400_bad_payload(read: Callable[[], object]) -> None:
    with pytest.raises(WebhookError) as refused:
        read()
    assert (refused.value.status, refused.value.reason) == (400, "bad-payload")


def test_a_refusal_reads_as_its_message() -> None:
    refused = WebhookError(403, "payload_hash does not match the request body", "bad-signature")
    assert str(refused) == "payload_hash does not match the request body"


@pytest.mark.parametrize(
    ("value", "field"), [(event(), "phase"), (Ignored("why"), "reason")], ids=["CallEvent", "Ignored"]
)
def test_what_a_provider_module_reads_cannot_be_changed_afterwards(value: object, field: str) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, field, None)


def test_a_completed_call_with_a_duration_was_answered_that_long_before_it_ended() -> None:
    ended = event(
        phase=Phase.ENDED, at_ms=90_000, end_status=EndStatus.COMPLETED, duration_ms=30_000, sip_code=200
    )
    answered, last = with_implied_answer(ended)
    assert (answered.phase, answered.at_ms, answered.end_status, answered.sip_code) == (
        Phase.ANSWERED,
        60_000,
        None,
        None,
    )
    assert last == ended


@pytest.mark.parametrize(
    "ended",
    [
        event(phase=Phase.ENDED, end_status=EndStatus.BUSY, duration_ms=30_000),
        event(phase=Phase.ENDED, end_status=EndStatus.COMPLETED, duration_ms=0),
        event(phase=Phase.ENDED, end_status=EndStatus.COMPLETED),
        event(phase=Phase.ANSWERED, end_status=EndStatus.COMPLETED, duration_ms=5),
    ],
)
def test_no_answer_is_implied_without_a_completed_end_and_a_duration(ended: CallEvent) -> None:
    assert with_implied_answer(ended) == [ended]


def test_an_explicit_direction_decides_whose_call_it_is() -> None:
    signal = resolve(
        event(direction=Direction.OUTBOUND, from_number=ALICE, to_number=BOB), "p", users_directory()
    )
    assert not isinstance(signal, Ignored)
    assert (signal.user_id, signal.direction) == ("alice", Direction.OUTBOUND)


def test_without_a_direction_the_user_called_comes_first() -> None:
    signal = resolve(event(direction=None, from_number=ALICE, to_number=BOB), "p", users_directory())
    assert not isinstance(signal, Ignored)
    assert (signal.user_id, signal.direction) == ("bob", Direction.INBOUND)


def test_without_a_direction_a_call_from_a_user_to_outside_is_outbound() -> None:
    signal = resolve(event(direction=None, from_number=ALICE, to_number=CALLER), "p", users_directory())
    assert not isinstance(signal, Ignored)
    assert (signal.user_id, signal.direction) == ("alice", Direction.OUTBOUND)


def test_national_numbers_are_read_in_the_directorys_region() -> None:
    directory = Directory(
        [User(id="ann", login="ann", tenant=1, password_hash="x", numbers=("+442079460958",))],
        default_region="GB",
    )
    signal = resolve(event(to_number="020 7946 0958", from_number="07700 900123"), "p", directory)
    assert not isinstance(signal, Ignored)
    assert (signal.user_id, signal.to_number, signal.from_number) == ("ann", "+442079460958", "+447700900123")


def test_the_outbound_side_names_the_missing_user_number() -> None:
    ignored = resolve(event(direction=Direction.OUTBOUND, from_number=CALLER), "p", users_directory())
    assert isinstance(ignored, Ignored)
    assert (ignored.outcome, ignored.reason) == (
        "unknown-number",
        f"no user has number {CALLER} (From of an outbound call)",
    )


def test_the_inbound_side_names_the_missing_user_number() -> None:
    ignored = resolve(event(to_number="+15555550177"), "p", users_directory())
    assert isinstance(ignored, Ignored)
    assert (ignored.outcome, ignored.reason) == (
        "unknown-number",
        "no user has number +15555550177 (To of an inbound call)",
    )


def test_without_a_direction_a_call_between_no_users_numbers_is_ignored() -> None:
    ignored = resolve(event(direction=None, to_number="+15555550177"), "p", users_directory())
    assert isinstance(ignored, Ignored)
    assert (ignored.outcome, ignored.reason) == (
        "unknown-number",
        f"no user has number +15555550177 or {CALLER}",
    )


def test_a_signal_carries_the_events_facts_and_the_provider_as_source() -> None:
    ended = event(
        phase=Phase.ENDED, remote_name="Ann", end_status=EndStatus.BUSY, sip_code=486, duration_ms=0, at_ms=7
    )
    signal = resolve(ended, "telnyx", users_directory())
    assert not isinstance(signal, Ignored)
    assert (signal.source, signal.call_id, signal.at_ms, signal.remote_name) == ("telnyx", "c1", 7, "Ann")
    assert (signal.end_status, signal.sip_code, signal.duration_ms) == (EndStatus.BUSY, 486, 0)


def test_an_end_status_and_code_outside_the_end_are_dropped() -> None:
    signal = resolve(
        event(phase=Phase.ANSWERED, end_status=EndStatus.BUSY, sip_code=486), "p", users_directory()
    )
    assert not isinstance(signal, Ignored)
    assert (signal.end_status, signal.sip_code) == (None, None)


def test_a_delivery_is_taken_whole_or_not_at_all() -> None:
    outcome = signals_for([event(), event(to_number="+15555550177")], "p", users_directory())
    assert isinstance(outcome, Ignored)
    taken = signals_for([event(), event(phase=Phase.ANSWERED)], "p", users_directory())
    assert not isinstance(taken, Ignored)
    assert [s.phase for s in taken] == [Phase.RINGING, Phase.ANSWERED]
