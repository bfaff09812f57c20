"""The generic signal format, sans-I/O: bytes in, signals or a precise refusal out."""

from __future__ import annotations

import json

import pytest

from gateway.model import Direction, Phase
from gateway.sources.ingest import IngestError, parse_signals
from gateway.users.directory import Directory, User

DIRECTORY = Directory([User(id="ann", login="ann", tenant=1, password_hash="x", numbers=("+15555550101",))])


def parse(**fields: object) -> list[object]:
    body = {"callId": "c1", "user": "ann", "direction": "inbound", "phase": "ringing", **fields}
    return list(parse_signals(json.dumps(body).encode(), DIRECTORY, now_ms=5))


def test_a_signal_reaches_the_user_named() -> None:
    (signal,) = parse(**{"from": "+15555550199"})
    assert (signal.user_id, signal.direction, signal.phase, signal.at_ms) == (  # type: ignore[attr-defined]
        "ann",
        Direction.INBOUND,
        Phase.RINGING,
        5,
    )


@pytest.mark.parametrize("field", ["callId", "source"])
def test_an_id_with_a_trailing_newline_is_refused(field: str) -> None:
    with pytest.raises(IngestError) as refused:
        parse(**{field: "abc\n"})
    assert refused.value.status == 422 and field in refused.value.message


def test_a_call_id_of_128_characters_is_taken_and_129_refused() -> None:
    assert parse(callId="a" * 128)
    with pytest.raises(IngestError):
        parse(callId="a" * 129)


def test_a_from_that_is_no_number_is_sent_as_none() -> None:
    (signal,) = parse(**{"from": "anonymous"})
    assert signal.from_number is None  # type: ignore[attr-defined]
