"""After a failed attempt (pure): wait, retry, park or give up, by what HubSpot answered."""

from __future__ import annotations

from gateway.hubspot.errors import NotConnected, RateLimited, Rejected, Transient, Unauthorized
from gateway.outbox.jobs import (
    BACKOFF_BASE,
    BACKOFF_CAP,
    PARK_SECONDS,
    Bury,
    NotBefore,
    Retry,
    after_failure,
    backoff,
)

NOW = 1000.0


def test_backoff_doubles_with_each_attempt() -> None:
    assert [backoff(n, lambda: 1.0) for n in (1, 2, 3)] == [BACKOFF_BASE, 2 * BACKOFF_BASE, 4 * BACKOFF_BASE]


def test_backoff_stops_growing_at_its_cap() -> None:
    assert backoff(40, lambda: 1.0) == BACKOFF_CAP


def test_backoff_jitter_spreads_a_step_over_its_upper_half() -> None:
    assert (backoff(2, lambda: 0.0), backoff(2, lambda: 0.5)) == (BACKOFF_BASE, 1.5 * BACKOFF_BASE)


def test_a_transient_failure_is_retried_after_the_backoff() -> None:
    assert after_failure(Transient("502"), 3, NOW, lambda: 1.0) == Retry(NOW + 4 * BACKOFF_BASE, "transient")


def test_a_rate_limited_request_waits_what_hubspot_said() -> None:
    assert after_failure(RateLimited("429", 7.5), 1, NOW, lambda: 1.0) == Retry(NOW + 7.5, "rate_limited")


def test_an_unauthorized_portal_parks_the_job() -> None:
    assert after_failure(Unauthorized("401"), 1, NOW, lambda: 0.0) == Retry(
        NOW + PARK_SECONDS, "unauthorized", parked=True
    )


def test_a_portal_never_connected_parks_the_job() -> None:
    assert after_failure(NotConnected("no tokens"), 9, NOW, lambda: 0.0) == Retry(
        NOW + PARK_SECONDS, "not_connected", parked=True
    )


def test_a_rejected_request_is_given_up_with_its_reason() -> None:
    assert after_failure(Rejected("400 unknown property"), 1, NOW, lambda: 0.0) == Bury(
        "rejected: 400 unknown property"
    )


def test_an_unforeseen_error_is_retried_like_a_transient_one() -> None:
    assert after_failure(KeyError("bug"), 1, NOW, lambda: 1.0) == Retry(NOW + BACKOFF_BASE, "error")


def test_an_attempt_that_may_have_taken_effect_is_retried_no_sooner_than_it_says() -> None:
    uncertain = NotBefore(Transient("timeout"), 30.0)
    assert after_failure(uncertain, 1, NOW, lambda: 1.0) == Retry(NOW + 30.0, "transient")


def test_an_attempt_that_may_have_taken_effect_keeps_a_later_backoff() -> None:
    uncertain = NotBefore(Transient("timeout"), 30.0)
    assert after_failure(uncertain, 4, NOW, lambda: 1.0) == Retry(NOW + 8 * BACKOFF_BASE, "transient")
