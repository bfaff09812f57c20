"""Which changes of a Redis Cluster's primaries call for a write-back (broker.redis.recovery.resized_only)."""

from __future__ import annotations

from gateway.broker.redis.recovery import resized_only

THREE = {"10.0.0.1:7000": "a" * 40, "10.0.0.2:7000": "b" * 40, "10.0.0.3:7000": "c" * 40}


def test_a_primary_added_is_no_loss() -> None:
    assert resized_only(THREE, {**THREE, "10.0.0.4:7000": "d" * 40})


def test_a_primary_removed_is_no_loss() -> None:
    assert resized_only(THREE, {k: v for k, v in THREE.items() if k != "10.0.0.3:7000"})


def test_a_primary_restarted_at_its_address_may_have_lost_writes() -> None:
    assert not resized_only(THREE, {**THREE, "10.0.0.2:7000": "e" * 40})


def test_a_primary_gone_while_another_came_is_a_failover_that_may_have_lost_writes() -> None:
    failed_over = {k: v for k, v in THREE.items() if k != "10.0.0.3:7000"} | {"10.0.0.9:7001": "f" * 40}
    assert not resized_only(THREE, failed_over)


def test_a_primary_added_while_another_restarted_may_have_lost_writes() -> None:
    assert not resized_only(THREE, {**THREE, "10.0.0.1:7000": "e" * 40, "10.0.0.4:7000": "d" * 40})


def test_a_single_server_is_never_resized() -> None:
    assert not resized_only({}, {})
