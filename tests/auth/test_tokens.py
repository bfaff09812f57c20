"""Session tokens and stream tickets: signed, typed, short-lived."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import FrozenInstanceError

import pytest

from gateway.auth.tokens import TokenError, TokenSigner


def test_a_token_verifies_until_it_expires() -> None:
    signer = TokenSigner("s" * 32)
    token = signer.issue("alice", "session", now=1000, ttl=60)
    assert signer.verify(token, "session", now=1059).user_id == "alice"
    with pytest.raises(TokenError, match="expired"):
        signer.verify(token, "session", now=1060)


def test_a_token_from_another_secret_is_refused() -> None:
    token = TokenSigner("a" * 32).issue("alice", "session", now=0, ttl=60)
    with pytest.raises(TokenError, match="signature"):
        TokenSigner("b" * 32).verify(token, "session", now=1)


def test_a_ticket_is_not_a_session() -> None:
    signer = TokenSigner("s" * 32)
    ticket = signer.issue("alice", "ticket", now=0, ttl=60)
    with pytest.raises(TokenError, match="ticket token cannot be used here"):
        signer.verify(ticket, "session", now=1)


def test_claims_swapped_under_a_kept_signature_are_refused() -> None:
    signer = TokenSigner("s" * 32)
    _, alices_body, alices_mac = signer.issue("alice", "session", now=0, ttl=60).split(".")
    _, bobs_body, _ = signer.issue("bob", "session", now=0, ttl=60).split(".")
    with pytest.raises(TokenError, match="signature"):
        signer.verify(f"v1.{bobs_body}.{alices_mac}", "session", now=1)
    assert signer.verify(f"v1.{alices_body}.{alices_mac}", "session", now=1).user_id == "alice"


def test_a_token_of_another_version_is_refused() -> None:
    signer = TokenSigner("s" * 32)
    token = signer.issue("alice", "session", now=0, ttl=60)
    with pytest.raises(TokenError, match="signature"):
        signer.verify("v2" + token[2:], "session", now=1)


@pytest.mark.parametrize("token", ["", "v1", "v1.abc", "v1.a.b.c", "v1..."])
def test_a_token_without_exactly_three_parts_is_malformed(token: str) -> None:
    with pytest.raises(TokenError, match="malformed"):
        TokenSigner("s" * 32).verify(token, "session", now=1)


def test_the_claims_carry_user_kind_and_expiry() -> None:
    signer = TokenSigner("s" * 32)
    claims = signer.verify(signer.issue("alice", "ticket", now=100, ttl=60), "ticket", now=101)
    assert (claims.user_id, claims.kind, claims.expires_at) == ("alice", "ticket", 160)


def test_a_token_one_instance_issues_verifies_on_another_with_the_secret() -> None:
    token = TokenSigner("s" * 32).issue("alice", "session", now=0, ttl=60)
    assert TokenSigner("s" * 32).verify(token, "session", now=1).user_id == "alice"


def test_every_token_carries_its_own_id() -> None:
    signer = TokenSigner("s" * 32)
    ids = {
        signer.verify(signer.issue("alice", "ticket", now=0, ttl=60), "ticket", now=1).token_id
        for _ in range(50)
    }
    assert len(ids) == 50
    assert all(len(i) >= 22 for i in ids)


# Tokens made by hand, as the format is written down: a signed body of any claims.
SECRET = "s" * 32


def hand_made(claims: object, raw_body: bytes | None = None) -> str:
    key = hashlib.sha256(b"gateway-token\0" + SECRET.encode()).digest()
    data = raw_body if raw_body is not None else json.dumps(claims).encode()
    body = base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    mac = (
        base64.urlsafe_b64encode(hmac.new(key, body.encode(), hashlib.sha256).digest()).rstrip(b"=").decode()
    )
    return f"v1.{body}.{mac}"


def test_a_token_written_as_the_format_says_verifies() -> None:
    claims = TokenSigner(SECRET).verify(hand_made({"sub": "ann", "knd": "session", "exp": 99}), "session", 1)
    assert (claims.user_id, claims.kind, claims.expires_at) == ("ann", "session", 99)


def test_a_token_from_before_tokens_had_ids_has_an_empty_id() -> None:
    claims = TokenSigner(SECRET).verify(hand_made({"sub": "ann", "knd": "ticket", "exp": 99}), "ticket", 1)
    assert claims.token_id == ""


def test_every_issued_token_has_its_own_id() -> None:
    signer = TokenSigner(SECRET)
    ids = {signer.verify(signer.issue("ann", "ticket", 0, 60), "ticket", 1).token_id for _ in range(5)}
    assert len(ids) == 5 and "" not in ids


@pytest.mark.parametrize(
    "token",
    [
        hand_made(None, raw_body=b"not json"),
        hand_made(["ann", "session", 99]),
        hand_made({"knd": "session", "exp": 99}),
        hand_made({"sub": "ann", "knd": "session", "exp": "soon"}),
    ],
)
def test_signed_claims_that_make_no_sense_are_malformed(token: str) -> None:
    with pytest.raises(TokenError, match="malformed"):
        TokenSigner(SECRET).verify(token, "session", 1)


def test_a_token_is_url_safe_without_padding() -> None:
    for user in ("a", "ab", "abc", "abcd"):
        token = TokenSigner(SECRET).issue(user, "ticket", 0, 60)
        assert "=" not in token and "+" not in token and "/" not in token


def test_a_token_with_characters_no_encoding_can_write_is_refused() -> None:
    with pytest.raises(TokenError, match="signature"):
        TokenSigner(SECRET).verify("v1.\udc80.\udc80", "session", 1)


def test_claims_cannot_be_changed_once_read() -> None:
    claims = TokenSigner(SECRET).verify(hand_made({"sub": "ann", "knd": "session", "exp": 99}), "session", 1)
    with pytest.raises(FrozenInstanceError):
        claims.user_id = "mallory"  # type: ignore[misc]
