"""The media links: they name one call, work until they expire, and cannot be made without the secret."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json

import pytest

from gateway.recordings.links import LinkRefused, LinkSigner

SIGNER = LinkSigner.from_secret("gateway-secret-for-tests-0123456789")
NOW = 1_764_643_200


def test_a_live_link_names_its_call() -> None:
    assert SIGNER.verify(SIGNER.issue("twilio:CA1", NOW + 300), NOW) == "twilio:CA1"


def test_a_link_at_its_expiry_is_refused_as_expired() -> None:
    with pytest.raises(LinkRefused) as refused:
        SIGNER.verify(SIGNER.issue("twilio:CA1", NOW), NOW)
    assert refused.value.expired


def test_a_link_of_another_secret_is_refused_as_forged() -> None:
    other = LinkSigner.from_secret("another-secret-0123456789")
    with pytest.raises(LinkRefused) as refused:
        SIGNER.verify(other.issue("twilio:CA1", NOW + 300), NOW)
    assert not refused.value.expired


def test_a_link_whose_call_was_changed_is_refused() -> None:
    mac = SIGNER.issue("twilio:CA1", NOW + 300).partition(".")[2]
    changed = SIGNER.issue("twilio:CA2", NOW + 300).partition(".")[0]
    with pytest.raises(LinkRefused):
        SIGNER.verify(f"{changed}.{mac}", NOW)


@pytest.mark.parametrize("token", ["", ".", "abc", "a.b.c", "ü.ü", "x" * 3000 + ".y"])
def test_a_malformed_link_is_refused_not_a_crash(token: str) -> None:
    with pytest.raises(LinkRefused):
        SIGNER.verify(token, NOW)


def test_a_link_is_the_documented_payload_and_mac() -> None:
    # Computed with openssl: HMAC-SHA256 keyed with SHA-256("gateway recording
    # links\0" + secret) over the base64url of {"c":...,"e":...}; links of one
    # instance must verify on every other.
    assert SIGNER.issue("twilio:CA1", 1_764_643_500) == (
        "eyJjIjoidHdpbGlvOkNBMSIsImUiOjE3NjQ2NDM1MDB9.WhCyTfQfj596YxZdc76BEqHiRgRJeniQbY6soPXQYXY"
    )


@pytest.mark.parametrize("external_id", ["a:1", "a:12", "a:123", "a:1234", "twilio:CA" + "0" * 32])
def test_links_of_every_length_verify(external_id: str) -> None:
    assert SIGNER.verify(SIGNER.issue(external_id, NOW + 1), NOW) == external_id


def test_an_expired_link_says_so() -> None:
    with pytest.raises(LinkRefused) as refused:
        SIGNER.verify(SIGNER.issue("twilio:CA1", NOW - 1), NOW)
    assert str(refused.value) == "recording link expired; HubSpot asks for a new one"


def _signed(raw: bytes) -> str:
    """A payload that is not a link, with a genuine MAC (as a key leak or a bug could give)."""
    payload = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    mac = hmac.new(SIGNER.key, payload.encode(), hashlib.sha256).digest()
    return payload + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "raw", [b"not json", b"[1]", b'{"c": 1, "e": 2}', b'{"c": "x", "e": "2"}', b'{"c": "x"}']
)
def test_a_genuinely_signed_payload_that_is_no_link_is_refused(raw: bytes) -> None:
    with pytest.raises(LinkRefused, match="not a recording link"):
        SIGNER.verify(_signed(raw), NOW)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_links_are_made_as_documented_whatever_their_bytes() -> None:
    key = hashlib.sha256(b"gateway recording links\x00gateway-secret-for-tests-0123456789").digest()
    for n in range(200):
        external_id = f"twilio:CA{n}"
        payload = _b64url(json.dumps({"c": external_id, "e": NOW}, separators=(",", ":")).encode())
        mac = _b64url(hmac.new(key, payload.encode(), hashlib.sha256).digest())
        assert SIGNER.issue(external_id, NOW) == f"{payload}.{mac}"


def test_a_link_with_a_mac_of_foreign_characters_is_no_link() -> None:
    with pytest.raises(LinkRefused) as refused:
        SIGNER.verify("abc.\u00fc", NOW)
    assert str(refused.value) == "not a recording link"


def test_a_signer_cannot_be_given_another_key() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        SIGNER.key = b"other"  # type: ignore[misc]
