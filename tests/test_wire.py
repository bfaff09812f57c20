"""The wire formats: the Redis codec of a call's state, and what the page accepts."""

from __future__ import annotations

import json
import re
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest

from gateway.model import EVENT_ORDER, Direction, EndStatus, Phase, advance, attach_engagement
from gateway.wire import (
    SSE_HEARTBEAT,
    Envelope,
    call_snapshot,
    decode_state,
    encode_event,
    encode_state,
    format_event_id,
    parse_event_id,
    sse_events,
    sse_opening,
)
from tests.support.calls import run, sig


def test_state_survives_a_round_trip_through_the_redis_codec() -> None:
    state, _ = run(
        [
            sig(Phase.RINGING, 5, from_number="+1", remote_name="Ann"),
            sig(Phase.ENDED, 9, end_status=EndStatus.BUSY, sip_code=486),
        ]
    )
    assert decode_state(encode_state(state)) == state


def test_the_page_calls_exactly_the_sdk_methods_the_model_emits() -> None:
    source = (Path(__file__).resolve().parents[1] / "web" / "js" / "calls.js").read_text()
    listed = re.search(r"SDK_METHODS = new Set\(\[(.*?)\]\)", source, re.S)
    assert listed is not None
    assert re.findall(r'"(\w+)"', listed.group(1)) == list(EVENT_ORDER)


def test_the_codec_keeps_every_fact_of_a_full_call() -> None:
    state, _ = run(
        [
            sig(Phase.RINGING, 5, from_number="+15555550199", to_number="+15555550101", remote_name="Ann"),
            sig(Phase.ANSWERED, 7),
            sig(
                Phase.ENDED,
                9,
                end_status=EndStatus.COMPLETED,
                sip_code=200,
                duration_ms=1500,
                transferred=True,
            ),
        ]
    )
    state = attach_engagement(state, 42)
    again = decode_state(encode_state(state))
    assert again == state
    assert (again.to_number, again.answered_ms, again.duration_ms, again.engagement_id) == (
        state.to_number,
        7,
        1500,
        42,
    )


def test_a_ringing_call_is_shown_ringing_with_its_numbers() -> None:
    state, _ = run([sig(Phase.RINGING, 5, from_number="+15555550199", to_number="+15555550101")])
    assert call_snapshot(state) == {
        "externalCallId": "t:c1",
        "direction": "inbound",
        "state": "ringing",
        "fromNumber": "+15555550199",
        "toNumber": "+15555550101",
        "remoteName": None,
        "startedAt": 5,
        "answeredAt": None,
        "endedAt": None,
        "endStatus": None,
        "engagementId": None,
        "loggedBy": None,
    }


def test_an_answered_call_is_shown_answered_with_its_caller() -> None:
    state, _ = run([sig(Phase.RINGING, 5, remote_name="Ann"), sig(Phase.ANSWERED, 7)])
    shown = call_snapshot(state)
    assert (shown["state"], shown["answeredAt"], shown["remoteName"]) == ("answered", 7, "Ann")


def test_an_ended_call_is_shown_with_its_end_and_engagement() -> None:
    state, _ = run(
        [
            sig(Phase.RINGING, 5, direction=Direction.OUTBOUND),
            sig(Phase.ENDED, 9, direction=Direction.OUTBOUND),
        ]
    )
    shown = call_snapshot(attach_engagement(state, 42))
    assert (
        shown["direction"],
        shown["state"],
        shown["endedAt"],
        shown["endStatus"],
        shown["engagementId"],
    ) == (
        "outbound",
        "ended",
        9,
        "CANCELED",
        42,
    )


def test_an_event_carries_its_type_call_payload_and_snapshot() -> None:
    state, events = advance(None, sig(Phase.RINGING, 5))
    body = json.loads(encode_event(state, events[0]))
    assert body == {
        "type": "incomingCall",
        "externalCallId": "t:c1",
        "payload": events[0].payload,
        "call": call_snapshot(state),
    }


def test_events_are_written_compactly_with_their_ids() -> None:
    frames = sse_events([Envelope("1-2", '{"a":1}'), Envelope("1-3", "{}")])
    assert frames == b'id: 1-2\nevent: sdk\ndata: {"a":1}\n\nid: 1-3\nevent: sdk\ndata: {}\n\n'


def test_a_stream_opens_with_retry_then_gap_then_hello() -> None:
    assert sse_opening(2000, gap=True, head_id="7-0") == (
        b"retry: 2000\n: connected\n\nevent: gap\ndata: {}\n\nevent: hello\nid: 7-0\ndata: {}\n\n"
    )
    assert sse_opening(1000, gap=False, head_id=None) == b"retry: 1000\n: connected\n\n"


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ("1732490000123-0", (1732490000123, 0)),
        (" 5-7 ", (5, 7)),
        (f"{2**64 - 1}-0", (2**64 - 1, 0)),
        (f"{2**64}-0", None),
        ("5", None),
        ("5-", None),
        ("-5", None),
        ("5-x", None),
        ("²-1", None),
        ("0" * 20 + "1-0", None),
        ("1-" + "0" * 20 + "1", None),
        ("", None),
        (None, None),
    ],
)
def test_event_ids_are_two_unsigned_64_bit_numbers(raw: str | None, parsed: tuple[int, int] | None) -> None:
    assert parse_event_id(raw) == parsed


def test_a_heartbeat_is_an_sse_comment_the_browser_ignores() -> None:
    assert SSE_HEARTBEAT == b": hb\n\n"


def test_an_event_id_reads_back_as_written() -> None:
    assert format_event_id((17, 3)) == "17-3"
    assert parse_event_id(format_event_id((17, 3))) == (17, 3)


def test_an_envelope_is_immutable_and_slim() -> None:
    envelope = Envelope("1-2", "{}")
    with pytest.raises(FrozenInstanceError):
        envelope.id = "1-3"  # type: ignore[misc]
    # Thousands are held per stream buffer and history: no per-instance dict.
    assert not hasattr(envelope, "__dict__")
