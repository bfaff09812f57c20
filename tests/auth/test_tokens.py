"""Session tokens and stream tickets: signed, typed, short-lived."""

from __future__ import annotations

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
