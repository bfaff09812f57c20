"""Several gateway processes on one Redis share the AORs of one PBX (docs/scaling.md).

Real ``gateway serve`` processes (so that one can be SIGKILLed), a real
redis-server and the fake PBX; ownership timings are short (heartbeat
0.2 s, TTL 1 s) so that each test takes a few seconds. What the PBX
accepted is the judge: ``Timeline`` rebuilds from its SUBSCRIBEs which
dialogs watched each AOR when.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.fakepbx import FakeSubscription
from tests.support.fleet import TAKEOVER_LIMIT, Fleet, Instance, calls_of, extensions, fleet
from tests.support.servers import RedisServer

AORS = 20


def each_watched_once(group: Fleet) -> None:
    timeline = group.timeline()
    assert {user: timeline.most_at_once(user) for user in extensions(AORS)} == dict.fromkeys(
        extensions(AORS), 1
    )


async def settled_once_each(group: Fleet) -> None:
    """Until each AOR is watched by one dialog; never two at once, also while they sorted it out."""
    await group.settled(AORS)
    each_watched_once(group)


@contextlib.asynccontextmanager
async def three(tmp_path: Path, redis_server: RedisServer) -> AsyncIterator[Fleet]:
    """Three instances sharing the AORS users, settled."""
    async with fleet(tmp_path, redis_server, AORS) as group:
        await group.add(3)
        await group.settled(AORS)
        yield group


def users_of(group: Fleet, instance: Instance) -> list[str]:
    return [user for user in extensions(AORS) if group.holder(user) is instance]


async def taken_again(
    group: Fleet, users: list[str], since: float
) -> tuple[list[FakeSubscription], list[float]]:
    """The users' new dialogs, and how long after ``since`` each was accepted."""
    taken = await asyncio.gather(*(group.pbx.subscribed(user, TAKEOVER_LIMIT) for user in users))
    return taken, [sub.accepted_at[-1] - since for sub in taken]


async def test_three_instances_subscribe_each_of_twenty_aors_exactly_once(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with three(tmp_path, redis_server) as group:
        each_watched_once(group)
        holders = {group.holder(user).name for user in extensions(AORS)}
    assert len(holders) == 3  # shared, not all on the first to start


async def test_the_aors_of_a_killed_instance_are_subscribed_again_by_the_others_within_15_s(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with three(tmp_path, redis_server) as group:
        victim = group.holder(extensions(AORS)[0])
        orphans = users_of(group, victim)
        group.pbx.forget_seen()
        taken, took = await taken_again(group, orphans, group.kill(victim))
        await settled_once_each(group)
    assert all(sub.contact[1] != victim.sip_port for sub in taken)
    print(f"takeover after SIGKILL of {len(orphans)} AORs: max {max(took):.2f} s, min {min(took):.2f} s")
    assert max(took) < TAKEOVER_LIMIT


async def test_a_stopped_instance_unsubscribes_its_aors_and_the_others_take_them_at_once(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with three(tmp_path, redis_server) as group:
        leaving = group.holder(extensions(AORS)[0])
        handed = users_of(group, leaving)
        group.pbx.forget_seen()
        stopped = time.monotonic()
        await leaving.stop()  # SIGTERM
        ended = await asyncio.gather(*(group.pbx.unsubscribed(user) for user in handed))
        _, took = await taken_again(group, handed, stopped)
        await settled_once_each(group)
    assert all(sub.contact[1] == leaving.sip_port for sub in ended)
    print(f"graceful handover of {len(handed)} AORs: max {max(took):.2f} s")
    assert max(took) < TAKEOVER_LIMIT


async def test_a_joining_instance_takes_a_share_and_the_other_aors_stay_where_they_are(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with three(tmp_path, redis_server) as group:
        before = {user: group.holder(user).name for user in extensions(AORS)}
        (joined,) = await group.add(1)
        await settled_once_each(group)
        after = {user: group.holder(user).name for user in extensions(AORS)}
    moved = [user for user in extensions(AORS) if before[user] != after[user]]
    print(f"a fourth instance joined: {len(moved)} of {AORS} AORs moved")
    assert moved and {after[user] for user in moved} == {joined.name}
    assert len(moved) <= AORS // 2  # about a quarter; everything moving would be all 20


async def test_a_rolling_restart_never_leaves_an_aor_unwatched_for_long(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with three(tmp_path, redis_server) as group:
        began = time.monotonic()
        # As a deployment replaces pods: a new one up, then an old one stopped.
        for instance in list(group.instances):
            await group.add(1)
            await instance.stop()
            await group.settled(AORS)
        ended = time.monotonic()
        timeline = group.timeline()
        gaps = [timeline.longest_unwatched(user, began, ended) for user in extensions(AORS)]
        each_watched_once(group)
    print(f"rolling restart of 3 instances: longest unwatched {max(gaps):.2f} s")
    assert max(gaps) < TAKEOVER_LIMIT


# What the PBX says of one call on extension 2001, before and after the handover.
ASTERISK = (
    # Hint documents: dialog id = the extension, no call-id, direction and caller only while ringing.
    {"id": "2001", "state": "early", "direction": "recipient", "remote": "sip:+15555550199@carrier.test"},
    {"id": "2001", "state": "confirmed"},
    {"id": "2001", "state": "terminated"},
)
FREESWITCH = tuple(
    # One dialog per channel, id = the channel uuid, no call-id.
    {
        "id": "5f1d0c9e-3b2a-4c1d-8e7f-0a9b8c7d6e5f",
        "state": state,
        "direction": "recipient",
        "remote": "sip:+15555550199@x",
    }
    for state in ("early", "confirmed", "terminated")
)


@pytest.mark.parametrize("pbx_style", [ASTERISK, FREESWITCH], ids=["asterisk", "freeswitch"])
async def test_a_call_across_a_sigkill_handover_is_one_call_with_each_sdk_event_once(
    tmp_path: Path, redis_server: RedisServer, pbx_style: tuple[dict[str, str], ...]
) -> None:
    ringing, talking, hung_up = pbx_style
    user = extensions(AORS)[0]
    async with three(tmp_path, redis_server) as group:
        owner = group.holder(user)
        async with group.other_than(owner).stream(f"u{user}") as stream:
            assert (await group.pbx.notify(user, [ringing])).status == 200
            first = await stream.next()
            group.pbx.forget_seen()
            group.kill(owner)
            await group.pbx.subscribed(user, TAKEOVER_LIMIT)  # the new owner's dialog
            assert (await group.pbx.notify(user, [talking])).status == 200
            assert (await group.pbx.notify(user, [hung_up])).status == 200
            rest = await stream.take(3)
            # The next call on the extension: a new call, and nothing came in between.
            assert (await group.pbx.notify(user, [ringing])).status == 200
            marker = await stream.next()
    events = [first, *rest]
    assert [e.json["type"] for e in events] == ["incomingCall", "callAnswered", "callEnded", "callCompleted"]
    assert len(calls_of(events)) == 1
    assert marker.json["type"] == "incomingCall" and calls_of([marker]) != calls_of(events)
