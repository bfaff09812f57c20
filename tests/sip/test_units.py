"""Sans-I/O pieces of the SIP transport and subscriber, one behaviour each."""

from __future__ import annotations

import ipaddress

import pytest

from gateway.sources.sip.adapter import Request
from gateway.sources.sip.message_rules import Limits, Rejected, decode, response_target, stamp_via
from gateway.sources.sip.publish_server import source_allowed
from gateway.sources.sip.subscribe_rules import (
    Accepted,
    Forgotten,
    RefreshPacer,
    Refused,
    after_termination,
    backoff,
    failures_after,
    on_answer,
    restart_delay,
    seconds,
    subscription_state,
)
from gateway.sources.sip.transactions import ServerTransactions
from tests.support.sipwire import request


def test_backoff_doubles_from_the_minimum_up_to_the_cap() -> None:
    upper = [backoff(n, 1.0, 30.0, rng=lambda: 1.0) for n in range(1, 8)]
    assert upper == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_backoff_after_thousands_of_failures_is_the_cap() -> None:
    assert backoff(5000, 1.0, 30.0, rng=lambda: 1.0) == 30.0


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


def test_the_transaction_cache_is_bounded_in_bytes_dropping_the_oldest() -> None:
    cache = ServerTransactions(max_bytes=1000)
    for n in range(10):
        cache.begin(("b", "NOTIFY", "c", n))
        cache.finish(("b", "NOTIFY", "c", n), b"x" * 300)
    assert cache.bytes <= 1000
    assert len(cache) == 3
    assert cache.begin(("b", "NOTIFY", "c", 9)) == b"x" * 300
    assert cache.begin(("b", "NOTIFY", "c", 0)) is None


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


def _stamped_from_192_0_2_1(forged_params: bytes) -> Request:
    """A request from 10.0.0.9:5070 whose Via carries ``forged_params``, as received from 192.0.2.1:40000."""
    raw = request(host="10.0.0.9", port=5070, rport=False).replace(b"branch=", forged_params + b"branch=", 1)
    message = decode(raw, Limits())
    assert isinstance(message, Request)
    stamp_via(message, "192.0.2.1", 40000)
    return message


def test_received_and_rport_values_written_by_the_sender_are_replaced() -> None:
    message = _stamped_from_192_0_2_1(b"received=203.0.113.5;rport=6000;")
    via = message.headers.get_first("via") or ""
    assert "203.0.113.5" not in via and "6000" not in via
    assert via.endswith(";rport=40000;received=192.0.2.1")
    assert response_target(message, ("192.0.2.1", 40000)) == ("192.0.2.1", 40000)


def test_params_whose_names_only_begin_with_rport_or_received_are_kept_as_they_are() -> None:
    # The branch before them is what the sender matches its answer by (RFC 3261 §17.1.3).
    raw = request(host="10.0.0.9", port=5070, rport=False, branch="z9hG4bKabc").replace(
        b"branch=z9hG4bKabc", b"branch=z9hG4bKabc;rport-x=1;received-by=2", 1
    )
    message = decode(raw, Limits())
    assert isinstance(message, Request)
    stamp_via(message, "192.0.2.1", 40000)
    via = message.headers.get_first("via") or ""
    assert via.endswith(";branch=z9hG4bKabc;rport-x=1;received-by=2;received=192.0.2.1")
    assert response_target(message, ("192.0.2.1", 40000)) == ("192.0.2.1", 5070)


def test_without_rport_the_answer_goes_to_the_source_host_and_via_port() -> None:
    message = _stamped_from_192_0_2_1(b"received=203.0.113.5;")
    assert (message.headers.get_first("via") or "").endswith(";received=192.0.2.1")
    assert response_target(message, ("192.0.2.1", 40000)) == ("192.0.2.1", 5070)


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


def _answer(status: int, *, refreshing: bool = False, expires: str | None = "600") -> object:
    return on_answer(
        status,
        "Reason",
        refreshing=refreshing,
        to_tag="t1",
        contact_uri="sip:pbx@h",
        expires=expires,
        requested=300,
    )


def test_a_2xx_grants_the_pbxs_lifetime_and_refreshes_at_four_fifths() -> None:
    outcome = _answer(200)
    assert outcome == Accepted(600, "t1", "sip:pbx@h")
    assert isinstance(outcome, Accepted) and outcome.refresh_in == 480.0


def test_a_2xx_without_expires_grants_what_was_asked() -> None:
    assert _answer(202, expires=None) == Accepted(300, "t1", "sip:pbx@h")


def test_a_2xx_with_expires_zero_is_a_refusal() -> None:
    assert isinstance(_answer(200, expires="0"), Refused)


def test_481_to_a_refresh_means_the_pbx_forgot_us() -> None:
    assert _answer(481, refreshing=True) == Forgotten()


def test_481_to_a_new_subscription_is_a_refusal() -> None:
    assert _answer(481) == Refused("SUBSCRIBE answered 481 Reason")


@pytest.mark.parametrize(
    ("params", "delay"),
    [
        ({"reason": "deactivated"}, 0.0),
        ({"reason": "timeout"}, 0.0),
        ({"reason": "probation", "retry-after": "30"}, 30.0),
        ({"reason": "rejected"}, None),
        ({}, None),
    ],
)
def test_the_delay_after_termination_follows_rfc_6665(params: dict[str, str], delay: float | None) -> None:
    assert after_termination(params) == delay


def test_publish_sources_match_by_network_and_mapped_ipv4() -> None:
    networks = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8"))
    assert source_allowed("10.1.2.3", networks)
    assert source_allowed("::ffff:10.1.2.3", networks)
    assert source_allowed("fd00::1%eth0", networks)
    assert not source_allowed("11.0.0.1", networks)
    assert not source_allowed("not-an-address", networks)


def test_only_a_subscription_active_long_enough_wipes_its_failures() -> None:
    assert failures_after(3, None) == 4
    assert failures_after(3, 5.0) == 4
    assert failures_after(3, 30.0) == 1


def test_a_restart_is_never_sooner_than_the_floor() -> None:
    assert restart_delay(0.0) == 1.0
    assert restart_delay(7.5) == 7.5


@pytest.mark.parametrize("raw", ["\u00b2", "\uff11", "\u0663", "+5", "1_0", "-1", "", "9" * 30, "5s"])
def test_seconds_that_are_not_ascii_digits_count_as_absent(raw: str) -> None:
    assert seconds(raw, 42) == 42


def test_seconds_read_ascii_digits_around_whitespace() -> None:
    assert seconds(" 600 ", 42) == 600


@pytest.mark.parametrize("raw", ["\u00b2", "", "-5", "soon", "9" * 30])
def test_a_terminated_state_with_a_bad_retry_after_backs_off_as_if_it_had_none(raw: str) -> None:
    _, params = subscription_state(f"terminated;retry-after={raw}")
    assert after_termination(params) is None


def test_subscription_state_parameters_are_read_whatever_their_shape() -> None:
    state, params = subscription_state('Terminated; ;=x;reason="noresource";reason=other;retry-after')
    assert (state, params) == ("terminated", {"reason": "noresource", "retry-after": ""})


def test_the_first_refresh_asked_for_is_prompt_and_later_ones_wait_a_growing_step() -> None:
    pacer = RefreshPacer(1.0, 4.0)
    delays = []
    now = 100.0
    for _ in range(5):
        delay = pacer.ask(now, rng=lambda: 1.0)
        assert delay is not None
        delays.append(delay)
        now += delay
        pacer.sent()
    assert delays == [0.0, 1.0, 2.0, 4.0, 4.0]


def test_a_refresh_already_on_its_way_is_not_asked_for_twice() -> None:
    pacer = RefreshPacer(1.0, 4.0)
    assert pacer.ask(0.0) == 0.0
    assert pacer.ask(0.0) is None


def test_a_usable_document_starts_the_steps_over() -> None:
    pacer = RefreshPacer(1.0, 64.0)
    for _ in range(6):
        pacer.ask(0.0, rng=lambda: 1.0)
        pacer.sent()
    pacer.settled()
    assert pacer.ask(1000.0, rng=lambda: 1.0) == 0.0
    pacer.sent()
    assert pacer.ask(1000.0, rng=lambda: 1.0) == 1.0


def test_a_header_hiding_a_bare_cr_is_not_salvaged_into_an_answer() -> None:
    # Written back as it came, the CR would start a line of the sender's choosing
    # in our answer for any peer that ends lines at a bare CR (this parser does).
    raw = request(port=5070, content_length="banana").replace(
        b";branch=", b";x=1\rX-Injected: evil;branch=", 1
    )
    with pytest.raises(Rejected) as raised:
        decode(raw, Limits())
    assert raised.value.status == 0
    assert all("\r" not in value for _, value in raised.value.headers)
