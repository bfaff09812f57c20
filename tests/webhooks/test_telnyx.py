"""Telnyx Call Control webhooks, sans-I/O: Ed25519 signature, mapping, users."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.config import ConfigError, load_settings
from gateway.model import CallState, EndStatus, Signal, advance
from gateway.sources.webhooks import telnyx
from gateway.sources.webhooks.common import Ignored, WebhookError, signals_for
from tests.support.cpaas import (
    ALICE,
    BOB,
    CALLER,
    TELNYX_KEY,
    TELNYX_PUBLIC_KEY,
    sdk_events,
    telnyx_body,
    telnyx_headers,
    users_directory,
)

KEY = telnyx.load_public_key(TELNYX_PUBLIC_KEY)
WINDOW = 300


def check(body: bytes, headers: dict[str, str], now: int | None = None) -> None:
    telnyx.verify(
        KEY,
        headers.get("telnyx-timestamp"),
        headers.get("telnyx-signature-ed25519"),
        body,
        int(time.time()) if now is None else now,
        WINDOW,
    )


def refusal(body: bytes, headers: dict[str, str], now: int | None = None) -> WebhookError:
    with pytest.raises(WebhookError) as caught:
        check(body, headers, now)
    return caught.value


def test_signed_delivery_is_accepted() -> None:
    body = telnyx_body("call.initiated", "leg-1", direction="incoming")
    check(body, telnyx_headers(body))


def test_missing_headers_are_401() -> None:
    body = telnyx_body("call.initiated", "leg-1", direction="incoming")
    error = refusal(body, {})
    assert (error.status, error.reason) == (401, "no-signature")


def test_signature_by_another_key_is_403() -> None:
    body = telnyx_body("call.initiated", "leg-1", direction="incoming")
    other = Ed25519PrivateKey.from_private_bytes(b"\x01" * 32)
    error = refusal(body, telnyx_headers(body, key=other))
    assert (error.status, error.reason) == (403, "bad-signature")


def test_body_changed_after_signing_is_403() -> None:
    body = telnyx_body("call.initiated", "leg-1", direction="incoming")
    headers = telnyx_headers(body)
    error = refusal(body.replace(ALICE.encode(), b"+15555550102"), headers)
    assert error.status == 403


def test_timestamp_changed_after_signing_is_403() -> None:
    body = telnyx_body("call.initiated", "leg-1", direction="incoming")
    headers = telnyx_headers(body)
    headers["telnyx-timestamp"] = str(int(headers["telnyx-timestamp"]) + 1)
    assert refusal(body, headers).reason == "bad-signature"


@pytest.mark.parametrize("offset", [-301, 301])
def test_timestamp_outside_the_window_is_403(offset: int) -> None:
    now = int(time.time())
    body = telnyx_body("call.initiated", "leg-1", direction="incoming")
    error = refusal(body, telnyx_headers(body, timestamp=now + offset), now)
    assert (error.status, error.reason) == (403, "stale")


def test_signature_that_is_not_base64_is_403() -> None:
    body = telnyx_body("call.initiated", "leg-1", direction="incoming")
    headers = {**telnyx_headers(body), "telnyx-signature-ed25519": "not base64!"}
    assert refusal(body, headers).message == "telnyx-signature-ed25519 is not base64"


def signals(body: bytes) -> list[Signal] | Ignored:
    return signals_for(telnyx.parse(body), "telnyx", users_directory())


def events_of(*bodies: bytes) -> list[str]:
    out: list[Signal] = []
    for body in bodies:
        result = signals(body)
        assert not isinstance(result, Ignored), result
        out.extend(result)
    return sdk_events(out)


@pytest.mark.parametrize(("direction", "start"), [("incoming", "incomingCall"), ("outgoing", "outgoingCall")])
def test_call_initiated_starts_the_call_in_its_direction(direction: str, start: str) -> None:
    src, dst = (CALLER, ALICE) if direction == "incoming" else (ALICE, CALLER)
    result = signals(telnyx_body("call.initiated", "leg-1", direction=direction, src=src, dst=dst))
    assert not isinstance(result, Ignored)
    assert result[0].user_id == "alice"
    assert sdk_events(result) == [start]


def test_call_answered_is_answered() -> None:
    t = time.time()
    assert events_of(
        telnyx_body("call.initiated", "leg-1", at=t, direction="incoming"),
        telnyx_body("call.answered", "leg-1", at=t + 3),
    ) == ["incomingCall", "callAnswered"]


# (hangup_cause, direction) -> callEnded's status for an unanswered call.
UNANSWERED = [
    ("normal_clearing", "incoming", "MISSED"),
    ("normal_clearing", "outgoing", "CANCELED"),
    ("user_busy", "incoming", "BUSY"),
    ("user_busy", "outgoing", "BUSY"),
    ("timeout", "incoming", "MISSED"),
    ("timeout", "outgoing", "NO_ANSWER"),
    ("no_answer", "outgoing", "NO_ANSWER"),
    ("call_rejected", "incoming", "REJECTED"),
    ("call_rejected", "outgoing", "REJECTED"),
    ("originator_cancel", "incoming", "MISSED"),
    ("originator_cancel", "outgoing", "CANCELED"),
    ("not_found", "outgoing", "FAILED"),
    ("time_limit", "outgoing", "CANCELED"),
    ("unspecified", "incoming", "FAILED"),
    ("unspecified", "outgoing", "FAILED"),
]


@pytest.mark.parametrize(("cause", "direction", "status"), UNANSWERED)
def test_hangup_cause_of_an_unanswered_call(cause: str, direction: str, status: str) -> None:
    t = time.time()
    src, dst = (CALLER, ALICE) if direction == "incoming" else (ALICE, CALLER)
    start = "incomingCall" if direction == "incoming" else "outgoingCall"
    assert events_of(
        telnyx_body("call.initiated", "leg-1", at=t, direction=direction, src=src, dst=dst),
        telnyx_body("call.hangup", "leg-1", at=t + 20, hangup_cause=cause, src=src, dst=dst),
    ) == [start, f"callEnded:{status}", "callCompleted"]


@pytest.mark.parametrize(
    ("cause", "status"),
    [("normal_clearing", "COMPLETED"), ("time_limit", "COMPLETED"), ("unspecified", "FAILED")],
)
def test_hangup_cause_of_an_answered_call(cause: str, status: str) -> None:
    t = time.time()
    assert events_of(
        telnyx_body("call.initiated", "leg-1", at=t, direction="incoming"),
        telnyx_body("call.answered", "leg-1", at=t + 2),
        telnyx_body("call.hangup", "leg-1", at=t + 30, hangup_cause=cause),
    ) == ["incomingCall", "callAnswered", f"callEnded:{status}", "callCompleted"]


@pytest.mark.parametrize(
    ("sip", "status"), [("486", "BUSY"), ("603", "REJECTED"), ("480", "NO_ANSWER"), ("404", "FAILED")]
)
def test_sip_hangup_cause_decides_when_the_cause_is_unspecified(sip: str, status: str) -> None:
    result = signals(
        telnyx_body(
            "call.hangup",
            "leg-1",
            hangup_cause="unspecified",
            sip_hangup_cause=sip,
            src=ALICE,
            dst=CALLER,
        )
    )
    assert not isinstance(result, Ignored)
    assert (result[0].end_status, result[0].sip_code) == (status, int(sip))


def test_duration_comes_from_the_answer_and_hangup_times() -> None:
    t = time.time()
    states = []
    for body in (
        telnyx_body("call.initiated", "leg-1", at=t, direction="incoming"),
        telnyx_body("call.answered", "leg-1", at=t + 2),
        telnyx_body("call.hangup", "leg-1", at=t + 47.5, hangup_cause="normal_clearing"),
    ):
        result = signals(body)
        assert not isinstance(result, Ignored)
        states.extend(result)
    assert states[1].at_ms == int((t + 2) * 1000)
    state: CallState | None = None
    for signal in states:
        state, _ = advance(state, signal)
    assert state is not None
    assert abs(state.call_duration_ms() - 45_500) <= 1


def test_occurred_at_is_the_signal_time() -> None:
    t = 1_790_000_000.25
    result = signals(telnyx_body("call.initiated", "leg-1", at=t, direction="incoming"))
    assert not isinstance(result, Ignored)
    assert result[0].at_ms == 1_790_000_000_250


def test_event_without_direction_finds_the_user_on_either_side() -> None:
    inbound = signals(telnyx_body("call.hangup", "leg-1", hangup_cause="normal_clearing"))
    outbound = signals(
        telnyx_body("call.hangup", "leg-2", hangup_cause="normal_clearing", src=ALICE, dst=CALLER)
    )
    assert not isinstance(inbound, Ignored) and not isinstance(outbound, Ignored)
    assert (inbound[0].user_id, inbound[0].direction) == ("alice", "inbound")
    assert (outbound[0].user_id, outbound[0].direction) == ("alice", "outbound")


def test_sip_uri_numbers_are_read_as_numbers() -> None:
    result = signals(
        telnyx_body("call.initiated", "leg-1", direction="incoming", dst="sip:+15555550101@sip.telnyx.com")
    )
    assert not isinstance(result, Ignored)
    assert (result[0].user_id, result[0].to_number) == ("alice", ALICE)


def test_number_nobody_has_is_ignored_not_refused() -> None:
    result = signals(telnyx_body("call.initiated", "leg-1", direction="incoming", dst="+15555550177"))
    assert isinstance(result, Ignored)
    assert result.outcome == "unknown-number"


def test_other_event_types_are_ignored() -> None:
    result = signals(telnyx_body("call.bridged", "leg-1"))
    assert isinstance(result, Ignored)
    assert "call.bridged" in result.reason


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "body is not JSON"),
        (b'{"meta": {}}', 'no "data" object'),
        (b'{"data": {"event_type": "call.answered"}}', 'no "payload" object'),
    ],
)
def test_malformed_delivery_is_400(body: bytes, fragment: str) -> None:
    with pytest.raises(WebhookError) as caught:
        telnyx.parse(body)
    assert caught.value.status == 400
    assert fragment in caught.value.message


def test_public_key_setting_must_be_a_32_byte_key() -> None:
    short = base64.b64encode(b"x" * 16).decode()
    with pytest.raises(ConfigError) as caught:
        load_settings({"GATEWAY_TELNYX_PUBLIC_KEY": short})
    assert "32-byte Ed25519 key" in str(caught.value)
    assert (
        load_settings({"GATEWAY_TELNYX_PUBLIC_KEY": TELNYX_PUBLIC_KEY}).telnyx_public_key == TELNYX_PUBLIC_KEY
    )


@pytest.mark.parametrize("missing", ["telnyx-timestamp", "telnyx-signature-ed25519"])
def test_either_header_missing_is_401(missing: str) -> None:
    body = telnyx_body("call.initiated", "leg-1", direction="incoming")
    headers = telnyx_headers(body)
    del headers[missing]
    error = refusal(body, headers)
    assert (error.status, error.reason) == (401, "no-signature")


@pytest.mark.parametrize("offset", [-300, 300])
def test_timestamp_at_the_edge_of_the_window_is_accepted(offset: int) -> None:
    now = int(time.time())
    body = telnyx_body("call.initiated", "leg-1", direction="incoming")
    check(body, telnyx_headers(body, timestamp=now + offset), now)


@pytest.mark.parametrize(
    "timestamp", ["yesterday", "-1700000000", "1" * 13], ids=["word", "signed", "13-digits"]
)
def test_a_timestamp_that_is_not_up_to_12_digits_is_no_unix_time(timestamp: str) -> None:
    body = telnyx_body("call.initiated", "leg-1", direction="incoming")
    signature = base64.b64encode(TELNYX_KEY.sign(timestamp.encode() + b"|" + body)).decode()
    error = refusal(body, {"telnyx-timestamp": timestamp, "telnyx-signature-ed25519": signature})
    assert (error.status, error.reason) == (403, "bad-signature")
    assert error.message == "telnyx-timestamp is not a Unix time in seconds"


def test_a_12_digit_timestamp_is_a_unix_time() -> None:
    body = telnyx_body("call.initiated", "leg-1", direction="incoming")
    error = refusal(body, telnyx_headers(body, timestamp=10**11 + 1))
    assert error.reason == "stale"


@pytest.mark.parametrize(
    "garble",
    [lambda s: s[:10] + "!" + s[10:], lambda s: s[:10] + "\n" + s[10:], lambda s: s[:10] + "é" + s[10:]],
    ids=["punctuation", "newline", "non-ascii"],
)
def test_a_signature_with_anything_outside_base64_is_403(garble: Callable[[str], str]) -> None:
    body = telnyx_body("call.initiated", "leg-1", direction="incoming")
    headers = telnyx_headers(body)
    headers["telnyx-signature-ed25519"] = garble(headers["telnyx-signature-ed25519"])
    error = refusal(body, headers)
    assert (error.status, error.message) == (403, "telnyx-signature-ed25519 is not base64")


# hangup_cause -> the end status the delivery proposes, before the model
# weighs it against the call's history.
PROPOSED = [
    ("normal_clearing", EndStatus.COMPLETED),
    ("time_limit", EndStatus.COMPLETED),
    ("user_busy", EndStatus.BUSY),
    ("timeout", EndStatus.NO_ANSWER),
    ("no_answer", EndStatus.NO_ANSWER),
    ("call_rejected", EndStatus.REJECTED),
    ("originator_cancel", EndStatus.CANCELED),
    ("not_found", EndStatus.FAILED),
]


@pytest.mark.parametrize(("cause", "status"), PROPOSED)
def test_hangup_cause_proposes_an_end_status(cause: str, status: EndStatus) -> None:
    parsed = telnyx.parse(telnyx_body("call.hangup", "leg-1", hangup_cause=cause))
    assert not isinstance(parsed, Ignored)
    assert parsed[0].end_status == status


@pytest.mark.parametrize(("cause", "status"), [("unspecified", EndStatus.FAILED), ("a_later_cause", None)])
def test_without_a_sip_code_only_an_unspecified_cause_is_a_failure(
    cause: str, status: EndStatus | None
) -> None:
    parsed = telnyx.parse(telnyx_body("call.hangup", "leg-1", hangup_cause=cause))
    assert not isinstance(parsed, Ignored)
    assert parsed[0].end_status == status


def test_the_call_is_its_leg_id() -> None:
    parsed = telnyx.parse(telnyx_body("call.initiated", "leg-1", direction="incoming"))
    assert not isinstance(parsed, Ignored)
    assert parsed[0].call_id == "leg-1"


def test_without_a_leg_id_the_call_is_its_call_control_id() -> None:
    parsed = telnyx.parse(telnyx_body("call.initiated", "leg-1", direction="incoming", call_leg_id=None))
    assert not isinstance(parsed, Ignored)
    assert parsed[0].call_id == "v3:leg-1"


def test_an_outgoing_leg_between_two_users_belongs_to_the_caller() -> None:
    result = signals(telnyx_body("call.initiated", "leg-1", direction="outgoing", src=ALICE, dst=BOB))
    assert not isinstance(result, Ignored)
    assert (result[0].user_id, result[0].direction) == ("alice", "outbound")


@pytest.mark.parametrize("direction", ["sideways", ["incoming"], {"is": "incoming"}, 1])
def test_a_direction_that_is_neither_incoming_nor_outgoing_is_ignored(direction: object) -> None:
    parsed = telnyx.parse(telnyx_body("call.initiated", "leg-1", direction=direction))
    assert isinstance(parsed, Ignored)
    assert parsed.reason == f"direction {direction!r} is neither incoming nor outgoing"


@pytest.mark.parametrize(("direction", "name"), [("incoming", "Carol Caller"), ("outgoing", None)])
def test_the_caller_id_name_is_the_remote_party_only_on_an_incoming_leg(
    direction: str, name: str | None
) -> None:
    parsed = telnyx.parse(
        telnyx_body("call.initiated", "leg-1", direction=direction, caller_id_name="Carol Caller")
    )
    assert not isinstance(parsed, Ignored)
    assert parsed[0].remote_name == name


def test_texts_are_read_up_to_their_bounds() -> None:
    parsed = telnyx.parse(
        telnyx_body(
            "call.initiated",
            "leg-1",
            direction="incoming",
            src="x" * 256,
            dst="y" * 256,
            caller_id_name="z" * 128,
        )
    )
    assert not isinstance(parsed, Ignored)
    assert (parsed[0].from_number, parsed[0].to_number, parsed[0].remote_name) == (
        "x" * 256,
        "y" * 256,
        "z" * 128,
    )


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("from", {"src": "x" * 257}),
        ("to", {"dst": "x" * 257}),
        ("caller_id_name", {"caller_id_name": "x" * 129}),
        ("call_leg_id", {"call_leg_id": None, "call_control_id": None}),
    ],
)
def test_a_malformed_payload_field_is_400_naming_it(field: str, changes: dict[str, Any]) -> None:
    with pytest.raises(WebhookError) as caught:
        telnyx.parse(telnyx_body("call.initiated", "leg-1", direction="incoming", **changes))
    assert (caught.value.status, caught.value.reason) == (400, "bad-payload")
    assert caught.value.message.startswith(f"{field} must be")


def test_an_occurred_at_that_is_no_time_is_400_naming_it() -> None:
    body = telnyx_body("call.initiated", "leg-1", direction="incoming").replace(
        b'"occurred_at": "', b'"occurred_at": "x'
    )
    with pytest.raises(WebhookError) as caught:
        telnyx.parse(body)
    assert (caught.value.status, caught.value.reason) == (400, "bad-payload")
    assert caught.value.message.startswith("occurred_at ")
