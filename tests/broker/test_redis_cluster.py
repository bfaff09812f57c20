"""Gateways on a real three-master Redis Cluster: one slot per user, sharded pub/sub."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import redis

from gateway.broker.redis import RedisBroker, topology
from tests.support.harness import Client, make_settings, running_gateway, signal
from tests.support.redis_topologies import ClusterSetup, Node
from tests.support.resuming import Page, pages, send

WHOLE_CALL = ["incomingCall", "callAnswered", "callEnded", "callCompleted"]


def keys_by_node(cluster: ClusterSetup, pattern: str) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for node in cluster.nodes:
        with node.client() as client:
            found[node.port] = sorted(str(k) for k in client.scan_iter(match=pattern))
    return found


def slot(cluster: ClusterSetup, key: str) -> int:
    with cluster.nodes[0].client() as client:
        return int(client.execute_command("CLUSTER KEYSLOT", key))


async def test_an_event_entering_one_instance_reaches_a_stream_on_another(
    tmp_path: Path, cluster: ClusterSetup
) -> None:
    settings = make_settings(tmp_path, redis_url=cluster.url)
    async with running_gateway(settings) as one, running_gateway(settings) as two:
        streams = {name: two.stream(await one.login(name)) for name in ("alice", "bob")}
        for stream in streams.values():
            await stream.__aenter__()
        try:
            for name in streams:
                assert (await one.ingest(signal(f"{name}-1", "ringing", user=name))).status_code == 202
                assert (await two.ingest(signal(f"{name}-1", "answered", user=name))).status_code == 202
            got = {name: await stream.take(2) for name, stream in streams.items()}
        finally:
            for stream in streams.values():
                await stream.close()
    for name, events in got.items():
        assert [e.json["externalCallId"] for e in events] == [f"ingest:{name}-1"] * 2
        assert [e.json["type"] for e in events] == ["incomingCall", "callAnswered"]


async def test_every_key_of_a_call_and_its_live_channel_are_in_the_users_slot(
    tmp_path: Path, cluster: ClusterSetup
) -> None:
    settings = make_settings(tmp_path, redis_url=cluster.url)
    async with running_gateway(settings) as gw:
        token = await gw.login("alice")
        async with gw.stream(token) as stream:
            await gw.ingest(signal("k1", "ringing"))
            event = await stream.next()
            auth = {"authorization": f"Bearer {token}"}
            claimed = await gw.http.post("/api/stream/claim", json={"eventId": event.id}, headers=auth)
            assert claimed.status_code == 200, claimed.text
            shard_channels = {
                node.port: node.client().pubsub_shardchannels("gw:live:*") for node in cluster.nodes
            }
            global_channels = [node.client().pubsub_channels("gw:live:*") for node in cluster.nodes]
    keys = [k for ks in keys_by_node(cluster, "gw:{alice}:*").values() for k in ks]
    assert any(":call:ingest:k1" in k for k in keys) and any(k.endswith(":history") for k in keys)
    assert any(":claimed:" in k for k in keys)
    home = slot(cluster, "gw:{alice}:history")
    assert {slot(cluster, k) for k in keys} == {home}
    # Live events go by sharded pub/sub, on the node holding the user's slot only.
    holders = [port for port, channels in shard_channels.items() if "gw:live:{alice}" in channels]
    assert len(holders) == 1
    assert slot(cluster, "gw:live:{alice}") == home
    assert global_channels == [[], [], []]


def test_a_script_touching_two_users_slots_is_refused_by_the_cluster(cluster: ClusterSetup) -> None:
    # What the hash tags guard against: a node refuses a script whose keys
    # are in two slots.
    assert slot(cluster, "gw:{alice}:history") != slot(cluster, "gw:{bob}:history")
    with cluster.nodes[0].client() as node, pytest.raises(redis.ResponseError, match="same slot"):
        node.eval("return redis.call('GET', KEYS[1])", 2, "gw:{alice}:history", "gw:{bob}:history")


async def test_a_shard_restarted_empty_mid_call_neither_re_announces_nor_mislabels_the_call(
    tmp_path: Path, cluster: ClusterSetup
) -> None:
    home = slot(cluster, "gw:{alice}:history")
    (shard,) = [n for n in cluster.nodes if home in node_slots(n)]

    async def restart(_: Client) -> None:
        shard.kill()  # SIGKILL, no persistence: alice's slot comes back empty
        shard.start()

    announced_once_and_completed(await call_across(tmp_path, cluster, restart))


async def test_a_primary_added_and_given_a_users_slot_loses_no_event_and_re_announces_no_call(
    tmp_path: Path, cluster: ClusterSetup, caplog: pytest.LogCaptureFixture
) -> None:
    # A resize, not a restart (``recovery.resized_only``): the slot moves
    # with its keys, so the stream resumes where it was and the call goes on,
    # with no write-back and no window holding calls.
    caplog.set_level(logging.WARNING, logger="gateway.broker.redis")
    home = slot(cluster, "gw:{alice}:history")

    async def resize(_: Client) -> None:
        fourth = await asyncio.to_thread(cluster.add_primary)
        await asyncio.to_thread(cluster.move_slot, home, fourth)
        # The node that gave up the slot dropped the page's channel: the
        # listener of the page's instance (which sends nothing after the
        # move, so meets no moved slot itself) reconnects, to four primaries.
        await asyncio.to_thread(fourth.until_subscribed, "gw:control:*")

    page = await call_across(tmp_path, cluster, resize)
    announced_once_and_completed(page)
    assert [e["type"] for e in page.calls()["ingest:r2"]] == ["incomingCall"]
    assert not [r.getMessage() for r in caplog.records if "written back" in r.getMessage()]


async def test_a_new_primary_restarted_empty_mid_call_is_noticed_by_an_instance_that_never_used_it(
    tmp_path: Path, cluster: ClusterSetup
) -> None:
    # Alice's slot moves to a primary added mid-call: the page's instance
    # reconnects (a node gave up its channel's slot), the one taking the
    # signals learns of the new primary by itself, and both watch it; so
    # its restart holds the calls on both until what they remember is back.
    home = slot(cluster, "gw:{alice}:history")

    async def resize_then_restart(signals: Client) -> None:
        fourth = await asyncio.to_thread(cluster.add_primary)
        await asyncio.to_thread(cluster.move_slot, home, fourth)
        # A step through the signals' instance meets the move (MOVED): its
        # slot map names the new primary from then on, and its steps for
        # alice go there directly, checked against its run id.
        await send(signals, signal("m1", "ringing"))
        # Both instances listen on a control channel there.
        await asyncio.to_thread(fourth.until_subscribed, "gw:control:*", 2)
        fourth.kill()  # SIGKILL, no persistence: alice's slot comes back empty
        await asyncio.to_thread(fourth.start)

    announced_once_and_completed(await call_across(tmp_path, cluster, resize_then_restart))


async def test_a_call_step_for_a_slot_moved_to_another_primary_goes_through_at_once(
    tmp_path: Path, cluster: ClusterSetup, caplog: pytest.LogCaptureFixture
) -> None:
    # The instance streams nothing of alice's, so nothing told it of the
    # move: its script goes to the old owner and is redirected (MOVED) to
    # the new one, another primary it checked; that is not a restart.
    caplog.set_level(logging.WARNING)
    home = slot(cluster, "gw:{alice}:history")
    settings = make_settings(tmp_path, redis_url=cluster.url)
    async with running_gateway(settings) as gw:
        assert (await gw.ingest(signal("m1", "ringing"))).status_code == 202
        elsewhere = next(n for n in cluster.nodes if n is not cluster.owner(home))
        await asyncio.to_thread(cluster.move_slot, home, elsewhere)
        answered = await gw.ingest(signal("m1", "answered"))
    assert answered.status_code == 202, answered.text
    assert not [r.getMessage() for r in caplog.records if "restarted" in r.getMessage()]


async def test_a_call_step_on_a_primary_not_met_yet_is_checked_against_its_run_id(
    tmp_path: Path, cluster: ClusterSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before the listener looks at the primaries again (never, here), a
    # step for a slot moved to a new primary asks that primary's run id
    # first, rather than writing there unchecked.
    monkeypatch.setattr(topology, "_PRIMARIES_SECONDS", 3600.0)
    home = slot(cluster, "gw:{alice}:history")
    settings = make_settings(tmp_path, redis_url=cluster.url)
    async with running_gateway(settings) as gw:
        broker = gw.gateway.broker
        assert isinstance(broker, RedisBroker)
        assert (await gw.ingest(signal("n1", "ringing"))).status_code == 202
        fourth = await asyncio.to_thread(cluster.add_primary)
        await asyncio.to_thread(cluster.move_slot, home, fourth)
        answered = await gw.ingest(signal("n1", "answered"))
        checked = dict(broker._node_run_ids)
    with fourth.client() as client:
        run_id = client.info("server")["run_id"]
    assert answered.status_code == 202, answered.text
    assert checked[f"127.0.0.1:{fourth.port}"] == run_id


async def call_across(
    tmp_path: Path, cluster: ClusterSetup, meanwhile: Callable[[Client], Awaitable[None]]
) -> Page:
    """Alice's call rings and is answered, ``meanwhile`` happens, the call ends and another rings.

    Signals enter on one instance (``meanwhile`` is given it), her page
    streams from another; the page as it then is.
    """
    settings = make_settings(tmp_path, redis_url=cluster.url)
    async with running_gateway(settings) as one, running_gateway(settings) as two:
        page = Page(two, await one.login("alice"))
        async with pages(page):
            await send(one, signal("r1", "ringing"))
            await send(two, signal("r1", "answered"))
            await page.until(lambda p: len(p.events) == 2)
            await meanwhile(one)
            await send(one, signal("r1", "ended"))
            await send(one, signal("r2", "ringing"))
            await page.until_call("ingest:r2")
    return page


def announced_once_and_completed(page: Page) -> None:
    """Alice's first call of ``call_across``: every SDK event once, and it ended COMPLETED."""
    calls = page.calls()
    assert [e["type"] for e in calls["ingest:r1"]] == WHOLE_CALL
    assert calls["ingest:r1"][2]["payload"]["callEndStatus"] == "COMPLETED"


def node_slots(node: Node) -> set[int]:
    with node.client() as client:
        ranges = client.execute_command("CLUSTER SLOTS")
    mine: set[int] = set()
    for first, last, primary, *_ in ranges:
        if int(primary[1]) == node.port:
            mine.update(range(int(first), int(last) + 1))
    return mine


async def test_a_primary_holding_only_the_slot_hardest_to_tag_gets_a_control_channel(
    tmp_path: Path, cluster: ClusterSetup
) -> None:
    # The slot whose smallest tag {n} is the largest of all 16,384 (past
    # 100,000): a search for tags that gives up early leaves its primary
    # unwatched, and its restart unnoticed.
    first = topology._first_tag_of_slot()
    hardest = max(range(len(first)), key=first.__getitem__)
    fourth = await asyncio.to_thread(cluster.add_primary)
    await asyncio.to_thread(cluster.move_slot, hardest, fourth)
    async with running_gateway(make_settings(tmp_path, redis_url=cluster.url)):
        await asyncio.to_thread(fourth.until_subscribed, "gw:control:*")
        with fourth.client() as client:
            channels = client.pubsub_shardchannels("gw:control:*")
            slots = [int(client.execute_command("CLUSTER KEYSLOT", c)) for c in channels]
    assert slots == [hardest]
