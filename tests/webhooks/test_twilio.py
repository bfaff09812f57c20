"""Twilio status callbacks, sans-I/O: signature, mapping, users."""

from __future__ import annotations

import hashlib
import time
from urllib.parse import urlencode, urlsplit

import pytest

from gateway.model import Signal
from gateway.sources.webhooks import twilio
from gateway.sources.webhooks.common import Ignored, WebhookError, signals_for
from tests.support.cpaas import (
    ALICE,
    CALLER,
    PUBLIC_URL,
    TWILIO_TOKEN,
    TWILIO_URL,
    sdk_events,
    twilio_json_request,
    twilio_params,
    twilio_request,
    twilio_sign,
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


def test_a_signed_form_with_an_empty_parameter_verifies() -> None:
    sent = twilio_params("CA1", "ringing", ForwardedFrom="")
    body, headers = twilio_request(sent)
    assert twilio.verify(TWILIO_TOKEN, TWILIO_URL, body, headers["x-twilio-signature"]) == sent


@pytest.mark.parametrize(
    ("seen", "signed"),
    [
        ("https://[2001:db8::1]/hook", "https://[2001:db8::1]:443/hook"),
        ("https://[2001:db8::1]:443/hook", "https://[2001:db8::1]/hook"),
        (
            "https://twilio:s3cret@gateway.example.com/hook",
            "https://twilio:s3cret@gateway.example.com:443/hook",
        ),
        ("http://twilio:s3cret@gateway.example.com:80/hook", "http://twilio:s3cret@gateway.example.com/hook"),
    ],
    ids=["ipv6-port-added", "ipv6-port-dropped", "user-info-port-added", "user-info-port-dropped"],
)
def test_ipv6_hosts_and_user_info_survive_the_port_variants(seen: str, signed: str) -> None:
    sent = twilio_params("CA1", "ringing")
    body = urlencode(sent).encode()
    assert twilio.verify(TWILIO_TOKEN, seen, body, twilio_sign(TWILIO_TOKEN, signed, sent)) == sent


def test_the_url_is_also_checked_exactly_as_requested() -> None:
    url = "https://Gateway.Example.com/webhooks/twilio/voice-status"
    sent = twilio_params("CA1", "ringing")
    body = urlencode(sent).encode()
    assert twilio.verify(TWILIO_TOKEN, url, body, twilio_sign(TWILIO_TOKEN, url, sent)) == sent


def test_an_empty_body_sha256_matches_no_body() -> None:
    url = TWILIO_URL + "?bodySHA256="
    sent = twilio_params("CA1", "ringing")
    body = urlencode(sent).encode()
    with pytest.raises(WebhookError) as caught:
        twilio.verify(TWILIO_TOKEN, url, body, twilio_sign(TWILIO_TOKEN, url, sent))
    assert (caught.value.status, caught.value.reason) == (403, "bad-signature")


def test_a_body_sha256_that_is_not_text_is_403() -> None:
    with pytest.raises(WebhookError) as caught:
        twilio.verify(TWILIO_TOKEN, TWILIO_URL + "?bodySHA256=\udcff", EXAMPLE_BODY, "x")
    assert (caught.value.status, caught.value.reason) == (403, "bad-signature")


def test_a_form_body_that_is_not_utf8_is_400() -> None:
    with pytest.raises(WebhookError) as caught:
        twilio.verify(TWILIO_TOKEN, TWILIO_URL, b"CallSid=CA\xff", "x")
    assert (caught.value.status, caught.value.reason) == (400, "bad-payload")


@pytest.mark.parametrize("body", [b"[1, 2]", b"{not json"], ids=["array", "not-json"])
def test_a_json_body_that_is_not_an_object_is_400(body: bytes) -> None:
    path, body, headers = twilio_json_request(body)
    with pytest.raises(WebhookError) as caught:
        twilio.verify(TWILIO_TOKEN, PUBLIC_URL + path, body, headers["x-twilio-signature"])
    assert (caught.value.status, caught.value.reason) == (400, "bad-payload")


def test_json_booleans_and_nested_values_are_not_parameters() -> None:
    path, body, headers = twilio_json_request(b'{"CallSid": "CA1", "SequenceNumber": 2, "x": true, "y": [1]}')
    params = twilio.verify(TWILIO_TOKEN, PUBLIC_URL + path, body, headers["x-twilio-signature"])
    assert params == {"CallSid": "CA1", "SequenceNumber": "2"}


def test_a_callback_without_timestamp_takes_the_arrival_time() -> None:
    params = twilio_params("CA1", "ringing")
    del params["Timestamp"]
    parsed = twilio.parse(params, 1_790_000_000_123, DAY_MS)
    assert not isinstance(parsed, Ignored)
    assert parsed[0].at_ms == 1_790_000_000_123


@pytest.mark.parametrize(
    "timestamp",
    ["noon", "Mon, 20 Nov 1995 19:12:08 -0000", "Mon, 20 Nov 99999999999999999999 19:12:08 +0000"],
    ids=["not-a-date", "no-zone", "year-out-of-range"],
)
def test_a_timestamp_that_is_no_zoned_rfc2822_date_is_400(timestamp: str) -> None:
    with pytest.raises(WebhookError) as caught:
        twilio.parse(twilio_params("CA1", "ringing", Timestamp=timestamp), 0, DAY_MS)
    assert (caught.value.status, caught.value.reason) == (400, "bad-payload")


def test_a_callback_exactly_as_old_as_a_call_is_remembered_is_taken() -> None:
    at = 1_790_000_000
    parsed = twilio.parse(twilio_params("CA1", "ringing", at=at), at * 1000 + DAY_MS, DAY_MS)
    assert not isinstance(parsed, Ignored)
    assert parsed[0].at_ms == at * 1000


@pytest.mark.parametrize("direction", ["trunking-terminating", "trunking-originating"])
def test_a_direction_the_gateway_does_not_follow_is_ignored(direction: str) -> None:
    result = signals(twilio_params("CA1", "ringing", direction=direction))
    assert isinstance(result, Ignored)
    assert result.reason == f"Direction {direction!r} is not one the gateway follows"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("CallStatus", "CallStatus '' is not a call progress status"),
        ("Direction", "Direction '' is not one the gateway follows"),
    ],
)
def test_a_callback_without_status_or_direction_is_ignored_saying_so(name: str, reason: str) -> None:
    params = twilio_params("CA1", "ringing")
    del params[name]
    result = signals(params)
    assert isinstance(result, Ignored)
    assert result.reason == reason


def test_from_to_and_caller_name_of_128_characters_are_read() -> None:
    long = "x" * 128
    parsed = twilio.parse(twilio_params("CA1", "ringing", From=long, To=long, CallerName=long), 0, 10**15)
    assert not isinstance(parsed, Ignored)
    assert (parsed[0].from_number, parsed[0].to_number, parsed[0].remote_name) == (long, long, long)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("From", "x" * 129),
        ("To", "x" * 129),
        ("CallerName", "x" * 129),
        ("CallSid", ""),
        ("CallDuration", "4.5"),
    ],
)
def test_a_malformed_parameter_is_400_naming_it(name: str, value: str) -> None:
    params = twilio_params("CA1", "completed")
    params[name] = value
    with pytest.raises(WebhookError) as caught:
        twilio.parse(params, 0, 10**15)
    assert (caught.value.status, caught.value.reason) == (400, "bad-payload")
    assert caught.value.message.startswith(f"{name} must be")


@pytest.mark.parametrize(
    "url", ["https:///webhooks/twilio/voice-status", "https:/webhooks/twilio/voice-status"]
)
def test_a_url_without_a_host_is_tried_with_no_host_made_up(url: str) -> None:
    assert {urlsplit(variant).hostname for variant in twilio.url_variants(url)} == {None}
