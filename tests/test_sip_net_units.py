"""Sans-I/O pieces of the SIP transport and subscriber, one behaviour each."""

from __future__ import annotations

import pytest

from gateway.sources.sip.adapter import Request
from gateway.sources.sip.messages import Limits, Rejected, decode, stamp_via
from gateway.sources.sip.subscriber import backoff, subscription_state
from gateway.sources.sip.transactions import ServerTransactions
from tests.sipwire import request


def test_backoff_doubles_from_the_minimum_up_to_the_cap() -> None:
    upper = [backoff(n, 1.0, 30.0, rng=lambda: 1.0) for n in range(1, 8)]
    assert upper == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_backoff_jitter_stays_in_the_upper_half() -> None:
    assert backoff(4, 1.0, 30.0, rng=lambda: 0.0) == 4.0
    assert backoff(4, 1.0, 30.0, rng=lambda: 0.5) == 6.0


def test_a_remembered_answer_is_returned_for_a_retransmission() -> None:
    cache = ServerTransactions()
    key = ("z9hG4bK1", "NOTIFY", "c1", 1)
    assert cache.begin(key) is None
    assert cache.begin(key) == b""  # still in progress
    cache.finish(key, b"SIP/2.0 200 OK\r\n\r\n")
    assert cache.begin(key) == b"SIP/2.0 200 OK\r\n\r\n"


def test_a_forgotten_transaction_is_processed_afresh() -> None:
    cache = ServerTransactions()
    key = ("z9hG4bK1", "NOTIFY", "c1", 1)
    cache.begin(key)
    cache.forget(key)
    assert cache.begin(key) is None


def test_the_transaction_cache_is_bounded() -> None:
    cache = ServerTransactions(capacity=100)
    for n in range(1000):
        cache.begin(("b", "NOTIFY", "c", n))
    assert len(cache) == 100


def test_answers_expire_after_the_lifetime() -> None:
    cache = ServerTransactions(lifetime=0.0)
    key = ("b", "NOTIFY", "c", 1)
    cache.begin(key)
    cache.finish(key, b"answer")
    assert cache.begin(key) is None


def test_subscription_state_reads_its_parameters() -> None:
    assert subscription_state("terminated;reason=deactivated; retry-after=30") == (
        "terminated",
        {"reason": "deactivated", "retry-after": "30"},
    )
    assert subscription_state(None) == ("", {})


def test_rport_is_filled_and_received_added() -> None:
    message = decode(request(host="10.0.0.9", port=5070, rport=True), Limits())
    assert isinstance(message, Request)
    stamp_via(message, "192.0.2.1", 40000)
    via = message.headers.get_first("via") or ""
    assert via.endswith(";rport=40000;received=192.0.2.1")


def test_a_via_matching_the_source_without_rport_is_left_alone() -> None:
    message = decode(request(host="192.0.2.1", port=5070, rport=False), Limits())
    assert isinstance(message, Request)
    before = message.headers.get_first("via")
    stamp_via(message, "192.0.2.1", 5070)
    assert message.headers.get_first("via") == before


@pytest.mark.parametrize("length", ["10", "abc", "-1"])
def test_a_content_length_the_datagram_cannot_satisfy_is_refused(length: str) -> None:
    with pytest.raises(Rejected) as raised:
        decode(request(body=b"hello", content_length=length), Limits())
    assert raised.value.status == 400
