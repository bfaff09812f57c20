"""Failed-login throttling, with the clock passed in."""

from __future__ import annotations

from gateway.auth.throttle import FailureThrottle


def test_a_key_is_blocked_after_the_limit_until_the_window_passes() -> None:
    throttle = FailureThrottle(limit=3, window=60)
    for t in (0.0, 1.0, 2.0):
        assert throttle.retry_after(["k"], t) == 0
        throttle.failed(["k"], t)
    assert throttle.retry_after(["k"], 3.0) == 57.0
    assert throttle.retry_after(["k"], 60.5) == 0


def test_a_success_clears_the_count() -> None:
    throttle = FailureThrottle(limit=2, window=60)
    throttle.failed(["k"], 0)
    throttle.succeeded(["k"])
    throttle.failed(["k"], 1)
    assert throttle.retry_after(["k"], 2) == 0


def test_memory_stays_bounded_under_a_spray_of_keys() -> None:
    throttle = FailureThrottle(limit=2, window=60, max_keys=100)
    for n in range(1000):
        throttle.failed([f"k{n}"], 0)
    assert len(throttle._failures) <= 100


def test_a_refund_takes_back_the_newest_count() -> None:
    throttle = FailureThrottle(limit=2, window=60)
    throttle.failed(["k"], 0)
    throttle.failed(["k"], 1)
    throttle.refund("k")
    assert throttle.retry_after(["k"], 2) == 0
