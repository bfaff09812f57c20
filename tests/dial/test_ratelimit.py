"""Dials per user in a sliding window (pure, the clock passed in)."""

from __future__ import annotations

from gateway.dial.ratelimit import DialRateLimiter, RateLimit

LIMIT = RateLimit(dials=3, seconds=60)


def dial_at(limiter: DialRateLimiter, *times: float) -> None:
    for at in times:
        assert limiter.retry_after("u", LIMIT, at) is None
        limiter.record("u", at)


def test_the_limit_admits_exactly_its_number_of_dials_in_the_window() -> None:
    limiter = DialRateLimiter()
    dial_at(limiter, 0, 1, 2)
    assert limiter.retry_after("u", LIMIT, 2.5) == 58


def test_a_dial_leaves_the_window_exactly_its_length_later() -> None:
    limiter = DialRateLimiter()
    dial_at(limiter, 0, 1, 2)
    assert limiter.retry_after("u", LIMIT, 59.99) == 1
    assert limiter.retry_after("u", LIMIT, 60.0) is None


def test_retry_after_is_at_least_one_second() -> None:
    limiter = DialRateLimiter()
    dial_at(limiter, 0, 0, 0)
    assert limiter.retry_after("u", LIMIT, 59.999) == 1


def test_users_are_limited_apart() -> None:
    limiter = DialRateLimiter()
    dial_at(limiter, 0, 1, 2)
    assert limiter.retry_after("other", LIMIT, 3) is None


def test_a_refused_attempt_does_not_count() -> None:
    limiter = DialRateLimiter()
    dial_at(limiter, 0, 1, 2)
    for at in (10, 20, 30):
        assert limiter.retry_after("u", LIMIT, at) is not None
    assert limiter.retry_after("u", LIMIT, 60) is None
