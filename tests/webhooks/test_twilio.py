"""Twilio status callbacks, sans-I/O: signature, mapping, users."""

from __future__ import annotations

import hashlib
import time
from urllib.parse import urlencode

import pytest

from gateway.model import Signal
from gateway.sources.webhooks import twilio
from gateway.sources.webhooks.common import Ignored, WebhookError, signals_for
from tests.support.cpaas import (
    ALICE,
    CALLER,
    TWILIO_TOKEN,
    TWILIO_URL,
    sdk_events,
    twilio_params,
    twilio_request,
    users_directory,
)

# The example twilio-python's tests publish (token "12345").
EXAMPLE_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
EXAMPLE_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}
EXAMPLE_BODY = b'{"property": "value", "boolean": true}'
EXAMPLE_BODY_SHA256 = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
DAY_MS = 86_400_000


def test_signature_matches_twilios_published_example() -> None:
    assert twilio.signature("12345", EXAMPLE_URL, EXAMPLE_PARAMS.items()) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="


@pytest.mark.parametrize(
    ("url", "signature"),
    [
        (EXAMPLE_URL, "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        # we see a port Twilio did not sign
        ("https://mycompany.com:1234/myapp.php?foo=1&bar=2", "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        # Twilio signed the port we see
        ("http://mycompany.com:1234/myapp.php?foo=1&bar=2", "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="),
        # Twilio signed the default port we do not see
        (EXAMPLE_URL, "kvajT1Ptam85bY51eRf/AJRuM3w="),
        ("http://mycompany.com/myapp.php?foo=1&bar=2", "0ZXoZLH/DfblKGATFgpif+LLRf4="),
    ],
)
def test_published_signatures_verify_with_and_without_the_port(url: str, signature: str) -> None:
    params = twilio.verify("12345", url, urlencode(EXAMPLE_PARAMS).encode(), signature)
    assert params == EXAMPLE_PARAMS


def test_json_body_is_verified_through_body_sha256() -> None:
    assert hashlib.sha256(EXAMPLE_BODY).hexdigest() == EXAMPLE_BODY_SHA256
    url = f"{EXAMPLE_URL}&bodySHA256={EXAMPLE_BODY_SHA256}"
    params = twilio.verify("12345", url, EXAMPLE_BODY, "a9nBmqA0ju/hNViExpshrM61xv4=")
    assert params["property"] == "value"


def test_json_body_changed_after_signing_is_403() -> None:
    url = f"{EXAMPLE_URL}&bodySHA256={EXAMPLE_BODY_SHA256}"
    with pytest.raises(WebhookError) as caught:
        twilio.verify("12345", url, EXAMPLE_BODY.replace(b"value", b"other"), "a9nBmqA0ju/hNViExpshrM61xv4=")
    assert (caught.value.status, caught.value.message) == (403, "bodySHA256 does not match the request body")


def test_missing_signature_is_401() -> None:
    body, _ = twilio_request(twilio_params("CA1", "ringing"))
    with pytest.raises(WebhookError) as caught:
        twilio.verify(TWILIO_TOKEN, TWILIO_URL, body, None)
    assert caught.value.status == 401
    assert caught.value.message == "missing X-Twilio-Signature header"


@pytest.mark.parametrize(
    ("token", "url", "tamper"),
    [
        ("another-auth-token-0123456789abc", TWILIO_URL, False),
        (TWILIO_TOKEN, "https://elsewhere.example.com/webhooks/twilio/voice-status", False),
        (TWILIO_TOKEN, TWILIO_URL, True),
    ],
    ids=["wrong-token", "other-url", "changed-parameter"],
)
def test_mis_signed_request_is_403(token: str, url: str, tamper: bool) -> None:
    body, headers = twilio_request(twilio_params("CA1", "ringing"), token=token)
    if tamper:
        body = body.replace(b"ringing", b"completed")
    with pytest.raises(WebhookError) as caught:
        twilio.verify(TWILIO_TOKEN, url, body, headers["x-twilio-signature"])
    assert caught.value.status == 403
    assert caught.value.message.startswith("X-Twilio-Signature does not match")


def test_signed_request_gives_its_parameters() -> None:
    sent = twilio_params("CA1", "ringing")
    body, headers = twilio_request(sent)
    assert twilio.verify(TWILIO_TOKEN, TWILIO_URL, body, headers["x-twilio-signature"]) == sent


def signals(params: dict[str, str]) -> list[Signal] | Ignored:
    now_ms = int(time.time() * 1000)
    return signals_for(twilio.parse(params, now_ms, DAY_MS), "twilio", users_directory())


def events_of(params: dict[str, str]) -> list[str]:
    result = signals(params)
    assert not isinstance(result, Ignored), result
    return sdk_events(result)


START = {"inbound": "incomingCall", "outbound-api": "outgoingCall", "outbound-dial": "outgoingCall"}


# (CallStatus, Direction) -> the SDK calls the model makes of that callback
# alone, with callEnded's status after normalisation.
MAPPING = [
    ("queued", "inbound", []),
    ("initiated", "inbound", []),
    ("ringing", "inbound", []),
    ("in-progress", "inbound", ["callAnswered"]),
    ("completed", "inbound", ["callEnded:MISSED", "callCompleted"]),
    ("busy", "inbound", ["callEnded:BUSY", "callCompleted"]),
    ("no-answer", "inbound", ["callEnded:MISSED", "callCompleted"]),
    ("canceled", "inbound", ["callEnded:MISSED", "callCompleted"]),
    ("failed", "inbound", ["callEnded:FAILED", "callCompleted"]),
] + [
    row
    for direction in ("outbound-api", "outbound-dial")
    for row in [
        ("queued", direction, []),
        ("initiated", direction, []),
        ("ringing", direction, []),
        ("in-progress", direction, ["callAnswered"]),
        ("completed", direction, ["callEnded:CANCELED", "callCompleted"]),
        ("busy", direction, ["callEnded:BUSY", "callCompleted"]),
        ("no-answer", direction, ["callEnded:NO_ANSWER", "callCompleted"]),
        ("canceled", direction, ["callEnded:CANCELED", "callCompleted"]),
        ("failed", direction, ["callEnded:FAILED", "callCompleted"]),
    ]
]


@pytest.mark.parametrize(("status", "direction", "then"), MAPPING)
def test_call_status_and_direction_map_to_sdk_events(status: str, direction: str, then: list[str]) -> None:
    assert events_of(twilio_params("CA1", status, direction=direction)) == [START[direction], *then]


@pytest.mark.parametrize("direction", ["inbound", "outbound-api"])
def test_completed_with_a_duration_was_answered(direction: str) -> None:
    params = twilio_params("CA1", "completed", direction=direction, CallDuration="42")
    assert events_of(params) == [START[direction], "callAnswered", "callEnded:COMPLETED", "callCompleted"]
    result = signals(params)
    assert not isinstance(result, Ignored)
    assert result[-1].duration_ms == 42_000
    assert result[0].at_ms == result[-1].at_ms - 42_000


def test_inbound_call_belongs_to_the_user_called() -> None:
    result = signals(twilio_params("CA1", "ringing", direction="inbound"))
    assert not isinstance(result, Ignored)
    assert (result[0].user_id, result[0].from_number, result[0].to_number) == ("alice", CALLER, ALICE)


def test_outbound_call_belongs_to_the_user_calling() -> None:
    result = signals(twilio_params("CA1", "ringing", direction="outbound-api"))
    assert not isinstance(result, Ignored)
    assert (result[0].user_id, result[0].from_number, result[0].to_number) == ("alice", ALICE, CALLER)


def test_number_nobody_has_is_ignored_not_refused() -> None:
    result = signals(twilio_params("CA1", "ringing", To="+15555550177"))
    assert isinstance(result, Ignored)
    assert result.outcome == "unknown-number"
    assert "+15555550177" in result.reason


def test_national_number_is_matched_through_the_default_region() -> None:
    result = signals(twilio_params("CA1", "ringing", To="(555) 555-0101"))
    assert not isinstance(result, Ignored)
    assert result[0].user_id == "alice"


def test_timestamp_parameter_is_the_signal_time() -> None:
    at = int(time.time()) - 30
    result = signals(twilio_params("CA1", "ringing", at=at))
    assert not isinstance(result, Ignored)
    assert result[0].at_ms == at * 1000


def test_callback_older_than_a_call_is_remembered_is_403() -> None:
    with pytest.raises(WebhookError) as caught:
        signals(twilio_params("CA1", "ringing", at=int(time.time()) - 2 * 86_400))
    assert (caught.value.status, caught.value.reason) == (403, "stale")


def test_status_that_is_not_call_progress_is_ignored() -> None:
    result = signals(twilio_params("CA1", "answered-by-robot"))
    assert isinstance(result, Ignored)
    assert result.outcome == "ignored"


def test_caller_name_and_sip_response_code_are_kept() -> None:
    result = signals(twilio_params("CA1", "busy", CallerName="Carol Caller", SipResponseCode="486"))
    assert not isinstance(result, Ignored)
    assert (result[0].remote_name, result[0].sip_code) == ("Carol Caller", 486)


def test_missing_call_sid_is_400() -> None:
    params = twilio_params("CA1", "ringing")
    del params["CallSid"]
    with pytest.raises(WebhookError) as caught:
        signals(params)
    assert caught.value.status == 400


def test_caller_name_of_an_outbound_leg_is_not_the_remote_party() -> None:
    result = signals(twilio_params("CA1", "ringing", direction="outbound-api", CallerName="Alice Example"))
    assert not isinstance(result, Ignored)
    assert result[0].remote_name is None
