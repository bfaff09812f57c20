"""Staying under HubSpot's limits, and reading the wait from a 429."""

from __future__ import annotations

import time

import pytest

from gateway.hubspot.ratelimit import DEFAULT_RETRY_SECONDS, Busy, Pacer, SlidingWindow, retry_after


def test_a_window_lets_its_limit_through_then_names_the_wait() -> None:
    window = SlidingWindow(2, 10.0)
    for now in (0.0, 1.0):
        assert window.delay(now) == 0
        window.record(now)
    assert window.delay(2.0) == 8.0
    assert window.delay(10.0) == 0  # the first has left the window


def test_retry_after_wins() -> None:
    assert retry_after({"retry-after": "7", "x-hubspot-ratelimit-remaining": "0"}) == 7


def test_the_secondly_limit_waits_a_second() -> None:
    assert retry_after({"x-hubspot-ratelimit-secondly-remaining": "0"}) == 1


def test_the_rolling_limit_waits_its_interval() -> None:
    headers = {"x-hubspot-ratelimit-remaining": "0", "x-hubspot-ratelimit-interval-milliseconds": "10000"}
    assert retry_after(headers) == 10


def test_a_429_without_headers_waits_the_burst_window() -> None:
    assert retry_after({}) == DEFAULT_RETRY_SECONDS


async def test_the_pacer_spaces_a_portals_searches() -> None:
    pacer = Pacer(general=(100, 10.0), search=(2, 0.3))
    started = time.monotonic()
    for _ in range(3):
        await pacer.acquire(100, search=True)
    assert time.monotonic() - started >= 0.29


async def test_one_portals_limit_does_not_slow_another() -> None:
    pacer = Pacer(general=(1, 10.0))
    await pacer.acquire(100)
    assert await pacer.delay(100, search=False) > 9
    assert await pacer.delay(200, search=False) == 0


async def test_a_hold_delays_every_request_of_the_portal() -> None:
    pacer = Pacer()
    await pacer.hold(100, 5)
    assert 4 < await pacer.delay(100, search=False) <= 5
    assert await pacer.delay(200, search=False) == 0


async def test_a_slot_further_away_than_the_wait_allowed_is_busy_at_once() -> None:
    pacer = Pacer(general=(1, 10.0))
    await pacer.acquire(100)
    started = time.monotonic()
    with pytest.raises(Busy) as busy:
        await pacer.acquire(100, max_wait=2.0)
    assert time.monotonic() - started < 1
    assert 9 < busy.value.seconds <= 10
