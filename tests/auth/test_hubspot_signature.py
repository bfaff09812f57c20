"""X-HubSpot-Signature-v3, against vectors computed from HubSpot's validation guide.

The expected values were computed outside this code, with
``printf '%s' "<method><decoded uri><body><timestamp>" | openssl dgst
-sha256 -hmac <secret> -binary | base64``, the steps of HubSpot's "Validate
the v3 request signature".
"""

from __future__ import annotations

import pytest

from gateway.auth.hubspot_signature import MAX_AGE_MS, SignatureRefused, decode_uri, signature, verify

SECRET = "client-secret-for-tests-0123"
TS = "1764643200000"
NOW_MS = int(TS)
# As HubSpot requests it: the colon of the call id and the query's parentheses
# and comma escaped, a non-ASCII character as its UTF-8 escapes, a space as %20.
QUERY_URI = "https://gateway.example.com/hubspot/recordings/twilio%3ACA0123?portalId=62515&note=caf%C3%A9%20%28x%29%2Cy"
QUERY_SIGNATURE = "0+ctswO41PelQ1KVdXsb9jy9yK1OjhaVj8LlzaZKqpg="


def test_only_hubspots_table_of_escapes_is_decoded() -> None:
    assert decode_uri("%3a%2F%3F%40%21%24%27%28%29%2A%2C%3B") == ":/?@!$'()*,;"
    assert decode_uri("caf%C3%A9%20%25") == "caf%C3%A9%20%25"


def test_a_get_with_a_query_and_non_ascii_escapes_matches_the_computed_vector() -> None:
    assert signature(SECRET, "GET", QUERY_URI, b"", TS) == QUERY_SIGNATURE


def test_a_post_signs_its_body() -> None:
    assert (
        signature(SECRET, "POST", "https://gateway.example.com/hooks", b'{"a":1}', TS)
        == "rLl7ZD5mVQwBju2c+jq8woJdqTlsVfDtHaauakDSlEQ="
    )


def test_a_raw_non_ascii_character_is_signed_as_utf_8() -> None:
    uri = "https://gateway.example.com/hubspot/recordings/vonage:ü"
    assert signature(SECRET, "GET", uri, b"", TS) == "OJ1mrM+ZUza8FaEvwDFKjnqbhrzyLTTbkTbfRSM+nOM="


def test_a_matching_signature_five_minutes_old_is_accepted() -> None:
    assert MAX_AGE_MS == 300_000
    verify(SECRET, "GET", QUERY_URI, b"", QUERY_SIGNATURE, TS, NOW_MS + 300_000)


def test_a_timestamp_older_than_five_minutes_is_refused_as_stale() -> None:
    with pytest.raises(SignatureRefused) as refused:
        verify(SECRET, "GET", QUERY_URI, b"", QUERY_SIGNATURE, TS, NOW_MS + 300_001)
    assert refused.value.reason == "stale"
    assert str(refused.value) == "X-HubSpot-Request-Timestamp is more than 5 minutes from now"


def test_another_secret_is_refused() -> None:
    with pytest.raises(SignatureRefused) as refused:
        verify("another-secret-0123456789", "GET", QUERY_URI, b"", QUERY_SIGNATURE, TS, NOW_MS)
    assert refused.value.reason == "bad-signature"


def test_a_changed_query_is_refused() -> None:
    with pytest.raises(SignatureRefused):
        verify(SECRET, "GET", QUERY_URI.replace("62515", "62516"), b"", QUERY_SIGNATURE, TS, NOW_MS)


@pytest.mark.parametrize(
    ("sig", "ts", "reason"),
    [
        (None, TS, "no-signature"),
        (QUERY_SIGNATURE, None, "no-signature"),
        (QUERY_SIGNATURE, "1.5e12", "bad-signature"),
    ],
)
def test_missing_or_malformed_headers_are_refused(sig: str | None, ts: str | None, reason: str) -> None:
    with pytest.raises(SignatureRefused) as refused:
        verify(SECRET, "GET", QUERY_URI, b"", sig, ts, NOW_MS)
    assert refused.value.reason == reason


def test_a_non_ascii_signature_header_is_refused_not_a_crash() -> None:
    with pytest.raises(SignatureRefused):
        verify(SECRET, "GET", QUERY_URI, b"", "ü" * 44, TS, NOW_MS)
