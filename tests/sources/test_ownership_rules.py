"""Which instance holds which AOR: rendezvous hashing over the live instances."""

from __future__ import annotations

from dataclasses import FrozenInstanceError

import pytest

from gateway.sources.ownership_rules import owner, plan, weight

AORS = [f"sip:{2000 + n}@pbx.test" for n in range(300)]


def owners(instances: list[str]) -> dict[str, str | None]:
    return {aor: owner(aor, instances) for aor in AORS}


def test_every_instance_computes_the_same_owner_whatever_order_it_lists_the_instances_in() -> None:
    assert owners(["a", "b", "c"]) == owners(["c", "a", "b"])


def test_the_aors_are_spread_over_the_instances() -> None:
    counts = {i: list(owners(["a", "b", "c"]).values()).count(i) for i in "abc"}
    assert all(60 <= n <= 140 for n in counts.values()), counts  # 100 each, give or take


def test_a_joining_instance_takes_aors_only_for_itself_and_about_its_share() -> None:
    before, after = owners(["a", "b", "c"]), owners(["a", "b", "c", "d"])
    moved = [aor for aor in AORS if before[aor] != after[aor]]
    assert {after[aor] for aor in moved} == {"d"}
    assert 40 <= len(moved) <= 110  # a quarter is 75; everything moving would be 300


def test_a_departing_instance_hands_over_only_its_own_aors() -> None:
    before, after = owners(["a", "b", "c"]), owners(["a", "c"])
    assert {before[aor] for aor in AORS if before[aor] != after[aor]} == {"b"}
    assert all(after[aor] in ("a", "c") for aor in AORS)


def test_no_live_instance_means_no_owner() -> None:
    assert owner(AORS[0], []) is None


def test_the_plan_takes_what_is_ours_and_gives_up_what_moved_or_is_no_longer_wanted() -> None:
    live = ["a", "b"]
    ours = {aor for aor in AORS if owner(aor, live) == "a"}
    theirs = sorted(set(AORS) - ours)
    held = {theirs[0], "sip:removed@pbx.test"}
    decided = plan(AORS, live, "a", held)
    assert decided.acquire == frozenset(ours)
    assert decided.release == frozenset(held)


def test_the_plan_counts_this_instance_live_even_when_the_heartbeat_answer_left_it_out() -> None:
    assert plan(AORS, [], "a", ()).acquire == frozenset(AORS)


def test_the_weights_are_fixed_so_that_two_releases_of_the_gateway_agree_during_an_upgrade() -> None:
    # A rolling upgrade runs old and new processes side by side: a change of
    # the weight function would have them disagree on every owner.
    assert weight("a", "sip:2001@pbx.test") == 16732473626220595585


def test_a_plan_cannot_be_changed_once_made() -> None:
    decided = plan(AORS, ["a"], "a", ())
    with pytest.raises(FrozenInstanceError):
        decided.acquire = frozenset()  # type: ignore[misc]
