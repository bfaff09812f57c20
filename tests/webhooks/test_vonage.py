"""Vonage Voice API events, sans-I/O: signed JWT, mapping, users."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest

from gateway.model import Signal
from gateway.sources.webhooks import vonage
from gateway.sources.webhooks.common import Ignored, WebhookError, signals_for
from gateway.users.directory import Directory, User
from tests.support.cpaas import (
    ALICE,
    CALLER,
    VONAGE_SECRET,
    sdk_events,
    users_directory,
    vonage_body,
    vonage_token,
)

WINDOW = 300

# RFC 7515 appendix A.1: a JWS signed HS256, with its key.
RFC7515_KEY = base64.urlsafe_b64decode(
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow=="
)
RFC7515_TOKEN = (
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
    ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
)


def test_hs256_check_accepts_rfc7515_example() -> None:
    claims = vonage.verify_hs256(RFC7515_TOKEN, RFC7515_KEY)
    assert claims == {"iss": "joe", "exp": 1300819380, "http://example.com/is_root": True}


def test_hs256_check_refuses_rfc7515_example_with_another_key() -> None:
    with pytest.raises(vonage.TokenInvalid, match="signature does not match"):
        vonage.verify_hs256(RFC7515_TOKEN, b"another key")


@pytest.mark.parametrize("alg", ["none", "HS512", "RS256"])
def test_token_not_signed_hs256_is_refused(alg: str) -> None:
    token = vonage_token(b"{}", alg=alg)
    with pytest.raises(vonage.TokenInvalid, match="is not HS256"):
        vonage.verify_hs256(token, VONAGE_SECRET.encode())


def check(body: bytes, authorization: str | None, now: int | None = None) -> None:
    vonage.verify(VONAGE_SECRET, authorization, body, int(time.time()) if now is None else now, WINDOW)


def refusal(body: bytes, authorization: str | None, now: int | None = None) -> WebhookError:
    with pytest.raises(WebhookError) as caught:
        check(body, authorization, now)
    return caught.value


def test_signed_event_is_accepted() -> None:
    body = vonage_body("uuid-1", "started")
    check(body, "Bearer " + vonage_token(body))


@pytest.mark.parametrize("authorization", [None, "", "Basic abc", "Bearer "])
def test_missing_bearer_token_is_401(authorization: str | None) -> None:
    error = refusal(vonage_body("uuid-1", "started"), authorization)
    assert (error.status, error.reason) == (401, "no-signature")


def test_token_signed_with_another_secret_is_403() -> None:
    body = vonage_body("uuid-1", "started")
    error = refusal(body, "Bearer " + vonage_token(body, secret="not-the-signature-secret"))
    assert (error.status, error.message) == (403, "Bearer token refused: signature does not match")


def test_body_changed_after_signing_is_403() -> None:
    body = vonage_body("uuid-1", "started")
    token = vonage_token(body)
    error = refusal(body.replace(b"started", b"answered"), "Bearer " + token)
    assert (error.status, error.message) == (403, "payload_hash does not match the request body")


def test_token_without_payload_hash_is_403() -> None:
    body = vonage_body("uuid-1", "started")
    error = refusal(body, "Bearer " + vonage_token(body, payload_hash=""))
    assert error.status == 403


@pytest.mark.parametrize("offset", [-301, 301])
def test_token_issued_outside_the_window_is_403(offset: int) -> None:
    now = int(time.time())
    body = vonage_body("uuid-1", "started")
    error = refusal(body, "Bearer " + vonage_token(body, iat=now + offset), now)
    assert (error.status, error.reason) == (403, "stale")


def test_garbage_token_is_403() -> None:
    error = refusal(vonage_body("uuid-1", "started"), "Bearer a.b")
    assert error.status == 403


def signals(body: bytes) -> list[Signal] | Ignored:
    return signals_for(vonage.parse(body, int(time.time() * 1000)), "vonage", users_directory())


def events_of(body: bytes) -> list[str]:
    result = signals(body)
    assert not isinstance(result, Ignored), result
    return sdk_events(result)


START = {"inbound": "incomingCall", "outbound": "outgoingCall"}

# (status, direction) -> the SDK calls the model makes of that event alone.
MAPPING = [
    ("started", "inbound", []),
    ("ringing", "inbound", []),
    ("answered", "inbound", ["callAnswered"]),
    ("machine", "inbound", ["callAnswered"]),
    ("completed", "inbound", ["callEnded:MISSED", "callCompleted"]),
    ("busy", "inbound", ["callEnded:BUSY", "callCompleted"]),
    ("cancelled", "inbound", ["callEnded:MISSED", "callCompleted"]),
    ("failed", "inbound", ["callEnded:FAILED", "callCompleted"]),
    ("rejected", "inbound", ["callEnded:REJECTED", "callCompleted"]),
    ("timeout", "inbound", ["callEnded:MISSED", "callCompleted"]),
    ("unanswered", "inbound", ["callEnded:MISSED", "callCompleted"]),
    ("started", "outbound", []),
    ("ringing", "outbound", []),
    ("answered", "outbound", ["callAnswered"]),
    ("machine", "outbound", ["callAnswered"]),
    ("completed", "outbound", ["callEnded:CANCELED", "callCompleted"]),
    ("busy", "outbound", ["callEnded:BUSY", "callCompleted"]),
    ("cancelled", "outbound", ["callEnded:CANCELED", "callCompleted"]),
    ("failed", "outbound", ["callEnded:FAILED", "callCompleted"]),
    ("rejected", "outbound", ["callEnded:REJECTED", "callCompleted"]),
    ("timeout", "outbound", ["callEnded:NO_ANSWER", "callCompleted"]),
    ("unanswered", "outbound", ["callEnded:NO_ANSWER", "callCompleted"]),
]


@pytest.mark.parametrize(("status", "direction", "then"), MAPPING)
def test_status_and_direction_map_to_sdk_events(status: str, direction: str, then: list[str]) -> None:
    assert events_of(vonage_body("uuid-1", status, direction=direction)) == [START[direction], *then]


@pytest.mark.parametrize("direction", ["inbound", "outbound"])
def test_completed_with_a_duration_was_answered(direction: str) -> None:
    body = vonage_body("uuid-1", "completed", direction=direction, duration="42")
    assert events_of(body) == [START[direction], "callAnswered", "callEnded:COMPLETED", "callCompleted"]
    result = signals(body)
    assert not isinstance(result, Ignored)
    assert result[-1].duration_ms == 42_000


def test_numbers_without_plus_are_read_as_international() -> None:
    result = signals(vonage_body("uuid-1", "ringing"))
    assert not isinstance(result, Ignored)
    assert (result[0].user_id, result[0].from_number, result[0].to_number) == ("alice", CALLER, ALICE)


def test_outbound_call_belongs_to_the_user_calling() -> None:
    result = signals(vonage_body("uuid-1", "ringing", direction="outbound"))
    assert not isinstance(result, Ignored)
    assert (result[0].user_id, result[0].direction) == ("alice", "outbound")


def test_timestamp_is_the_signal_time() -> None:
    result = signals(vonage_body("uuid-1", "ringing", at=1_790_000_000.5))
    assert not isinstance(result, Ignored)
    assert result[0].at_ms == 1_790_000_000_500


def test_number_nobody_has_is_ignored_not_refused() -> None:
    result = signals(vonage_body("uuid-1", "ringing", to="15555550177"))
    assert isinstance(result, Ignored)
    assert result.outcome == "unknown-number"


def test_event_that_is_not_a_call_status_is_ignored() -> None:
    result = signals(vonage_body("uuid-1", "transfer"))
    assert isinstance(result, Ignored)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"[1, 2]", "must be a JSON object"),
        (b'{"status": "ringing", "direction": "inbound"}', "uuid must be"),
        (b'{"status": "ringing", "direction": "inbound", "uuid": "u", "timestamp": "noon"}', "ISO-8601"),
    ],
)
def test_malformed_event_is_400(body: bytes, fragment: str) -> None:
    with pytest.raises(WebhookError) as caught:
        vonage.parse(body, 0)
    assert caught.value.status == 400
    assert fragment in caught.value.message


@pytest.mark.parametrize("offset", [-300, 300])
def test_token_issued_at_the_edge_of_the_window_is_accepted(offset: int) -> None:
    now = int(time.time())
    body = vonage_body("uuid-1", "started")
    check(body, "Bearer " + vonage_token(body, iat=now + offset), now)


@pytest.mark.parametrize("claims", [{"payload_hash": None}, {"payload_hash": 1}], ids=["missing", "number"])
def test_token_without_a_textual_payload_hash_is_403(claims: dict[str, Any]) -> None:
    body = vonage_body("uuid-1", "started")
    error = refusal(body, "Bearer " + vonage_token(body, claims=claims))
    assert (error.status, error.reason, error.message) == (
        403,
        "bad-signature",
        "token has no payload_hash claim",
    )


@pytest.mark.parametrize(
    "iat", [None, "1790000000", True, 1.5e9], ids=["missing", "text", "boolean", "fraction"]
)
def test_token_without_a_whole_number_iat_is_403(iat: object) -> None:
    body = vonage_body("uuid-1", "started")
    error = refusal(body, "Bearer " + vonage_token(body, claims={"iat": iat}))
    assert (error.status, error.reason, error.message) == (
        403,
        "bad-signature",
        "token has no numeric iat claim",
    )


@pytest.mark.parametrize("expires_in", [0, -1], ids=["now", "a-second-ago"])
def test_token_at_or_past_its_exp_is_403(expires_in: int) -> None:
    now = int(time.time())
    body = vonage_body("uuid-1", "started")
    error = refusal(body, "Bearer " + vonage_token(body, iat=now, claims={"exp": now + expires_in}), now)
    assert (error.status, error.reason, error.message) == (403, "stale", "token has expired")


@pytest.mark.parametrize("exp", [1, True, "0"], ids=["in-a-second", "boolean", "text"])
def test_token_whose_exp_is_later_or_no_time_is_accepted(exp: object) -> None:
    now = int(time.time())
    body = vonage_body("uuid-1", "started")
    claims = {"exp": now + exp if type(exp) is int else exp}
    check(body, "Bearer " + vonage_token(body, iat=now, claims=claims), now)


def test_token_whose_claims_are_not_ascii_is_refused_not_a_crash() -> None:
    header = vonage_token(b"").split(".")[0]
    with pytest.raises(vonage.TokenInvalid, match="not base64url"):
        vonage.verify_hs256(f"{header}.é.abc", VONAGE_SECRET.encode())


def test_token_with_a_segment_of_impossible_length_is_refused() -> None:
    header, claims, mac = vonage_token(b"").split(".")
    with pytest.raises(vonage.TokenInvalid, match="not base64url"):
        vonage.verify_hs256(f"{header}.{claims}.{mac}AA", VONAGE_SECRET.encode())


def test_body_that_is_not_json_is_400() -> None:
    with pytest.raises(WebhookError) as caught:
        vonage.parse(b"{not json", 0)
    assert (caught.value.status, caught.value.reason) == (400, "bad-payload")


def event_with(fields: dict[str, Any], status: str = "ringing") -> bytes:
    """An event of call uuid-1 with these fields added or replaced."""
    return vonage_body("uuid-1", status, **fields)


@pytest.mark.parametrize("direction", [None, "sideways", ["inbound"], {"is": "inbound"}])
def test_event_with_a_direction_neither_inbound_nor_outbound_is_ignored(direction: object) -> None:
    result = vonage.parse(event_with({"direction": direction}), 0)
    assert isinstance(result, Ignored)
    assert result.reason == f"direction {direction!r} is neither inbound nor outbound"


def test_international_numbers_of_any_country_gain_their_plus() -> None:
    directory = Directory(
        [User(id="ann", login="ann", tenant=1, password_hash="x", numbers=("+442079460958",))]
    )
    body = event_with({"from": "4915112345678", "to": "442079460958"})
    result = signals_for(vonage.parse(body, 0), "vonage", directory)
    assert not isinstance(result, Ignored)
    assert (result[0].user_id, result[0].from_number, result[0].to_number) == (
        "ann",
        "+4915112345678",
        "+442079460958",
    )


@pytest.mark.parametrize(
    "number", ["Unknown", "sip:carol@example.com", "123456", "0" + "1" * 9, "1" * 16], ids=str
)
def test_a_number_that_is_not_7_to_15_international_digits_is_kept_as_sent(number: str) -> None:
    parsed = vonage.parse(event_with({"from": number}), 0)
    assert not isinstance(parsed, Ignored)
    assert parsed[0].from_number == number


@pytest.mark.parametrize("number", ["1" * 7, "9" * 15])
def test_seven_to_fifteen_digits_are_an_international_number(number: str) -> None:
    parsed = vonage.parse(event_with({"from": number}), 0)
    assert not isinstance(parsed, Ignored)
    assert parsed[0].from_number == "+" + number


def test_an_event_without_numbers_has_none() -> None:
    parsed = vonage.parse(event_with({"from": None, "to": None}), 0)
    assert not isinstance(parsed, Ignored)
    assert (parsed[0].from_number, parsed[0].to_number) == (None, None)


def test_numbers_of_128_characters_are_read() -> None:
    parsed = vonage.parse(event_with({"from": "x" * 128, "to": "y" * 128}), 0)
    assert not isinstance(parsed, Ignored)
    assert (parsed[0].from_number, parsed[0].to_number) == ("x" * 128, "y" * 128)


@pytest.mark.parametrize(
    ("field", "value"),
    [("from", "x" * 129), ("to", "x" * 129), ("timestamp", "noon"), ("duration", "4.5")],
)
def test_a_malformed_field_is_400_naming_it(field: str, value: str) -> None:
    with pytest.raises(WebhookError) as caught:
        vonage.parse(event_with({field: value}, "completed"), 0)
    assert (caught.value.status, caught.value.reason) == (400, "bad-payload")
    assert caught.value.message.startswith(f"{field} ")
