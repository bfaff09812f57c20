"""Failed-login throttling, with the clock passed in."""

from __future__ import annotations

from gateway.auth.throttle import FailureThrottle, LocalLoginThrottle, LoginLimits


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


# -- the login rule (docs/operations.md#failed-logins), counted in one process --

LIMITS = LoginLimits(per_pair=3, per_address=5, per_login=6, window_seconds=60, own_days=1)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def fail(throttle: LocalLoginThrottle, login: str, address: str, times: int) -> None:
    for _ in range(times):
        assert await throttle.admit(login, address) == 0


async def test_one_address_is_held_on_one_login_after_its_guesses_and_only_there() -> None:
    throttle = LocalLoginThrottle(LIMITS, Clock())
    await fail(throttle, "alice", "10.0.0.66", 3)
    assert await throttle.admit("alice", "10.0.0.66") > 0
    assert await throttle.admit("alice", "10.0.0.1") == 0
    assert await throttle.admit("bob", "10.0.0.66") == 0


async def test_an_address_spraying_many_logins_is_held_for_all() -> None:
    throttle = LocalLoginThrottle(LIMITS, Clock())
    for n in range(5):
        await fail(throttle, f"user{n}", "10.0.0.66", 1)
    assert await throttle.admit("someone-else", "10.0.0.66") > 0
    assert await throttle.admit("someone-else", "10.0.0.1") == 0


async def test_guesses_from_many_addresses_close_a_login_to_strangers_but_not_to_its_own_address() -> None:
    throttle = LocalLoginThrottle(LIMITS, Clock())
    assert await throttle.admit("alice", "10.0.0.1") == 0
    await throttle.succeeded("alice", "10.0.0.1")  # alice signs in from her desk
    for n in range(6):
        await fail(throttle, "alice", f"10.9.0.{n}", 1)
    assert await throttle.admit("alice", "10.9.0.99") > 0  # a new address
    assert await throttle.admit("alice", "10.0.0.1") == 0  # hers


async def test_a_success_takes_its_counts_back_and_the_pair_starts_over() -> None:
    throttle = LocalLoginThrottle(LIMITS, Clock())
    await fail(throttle, "alice", "10.0.0.1", 2)
    assert await throttle.admit("alice", "10.0.0.1") == 0
    await throttle.succeeded("alice", "10.0.0.1")
    await fail(throttle, "alice", "10.0.0.1", 3)


async def test_a_held_try_may_go_again_once_the_window_passed() -> None:
    clock = Clock()
    throttle = LocalLoginThrottle(LIMITS, clock)
    await fail(throttle, "alice", "10.0.0.66", 3)
    assert await throttle.admit("alice", "10.0.0.66") == 60
    clock.now = 60.5
    assert await throttle.admit("alice", "10.0.0.66") == 0
