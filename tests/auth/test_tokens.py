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


def test_every_token_carries_its_own_id() -> None:
    signer = TokenSigner("s" * 32)
    ids = {
        signer.verify(signer.issue("alice", "ticket", now=0, ttl=60), "ticket", now=1).token_id
        for _ in range(50)
    }
    assert len(ids) == 50
    assert all(len(i) >= 22 for i in ids)
