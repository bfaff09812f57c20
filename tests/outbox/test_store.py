"""What both job stores guarantee: one job per key, leases, takeover, durability, counts."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import cast

import pytest
import redis as sync_redis
import redis.asyncio as redis

from gateway.outbox.jobs import Job
from gateway.outbox.redis import RedisStore
from gateway.outbox.store import JobStore
from tests.outbox.conftest import StoreFactory
from tests.support.redis_topologies import ClusterSetup, Node
from tests.support.servers import RedisServer

T0 = 1_700_000_000.0


def job(key: str = "log:u1:sip:c1", due: float = T0, created: float = T0) -> Job:
    return Job(key, "log", {"call": "sip:c1"}, created, due)


async def test_a_job_enqueued_twice_is_kept_once(store: JobStore) -> None:
    assert await store.put(job()) is True
    assert await store.put(job()) is False
    assert (await store.stats()).depth == 1


async def test_a_job_done_is_not_enqueued_again(store: JobStore) -> None:
    await store.put(job())
    taken = await store.take(T0, 60, "t1")
    assert taken is not None
    assert await store.complete(taken, T0 + 1)
    assert await store.put(job(created=T0 + 2)) is False
    assert (await store.stats()).depth == 0


async def test_a_job_is_not_taken_before_it_is_due(store: JobStore) -> None:
    await store.put(job(due=T0 + 30))
    assert await store.take(T0 + 29, 60, "t1") is None
    taken = await store.take(T0 + 30, 60, "t1")
    assert taken is not None and taken.payload == {"call": "sip:c1"}


async def test_a_taken_job_is_not_taken_again_while_its_lease_lasts(store: JobStore) -> None:
    await store.put(job())
    assert await store.take(T0, 60, "t1") is not None
    assert await store.take(T0 + 59, 60, "t2") is None


async def test_a_renewed_lease_keeps_the_job_from_other_workers_until_its_new_end(store: JobStore) -> None:
    await store.put(job())
    running = await store.take(T0, 60, "t1")
    assert running is not None
    assert await store.renew(running, T0 + 110) is True
    assert await store.take(T0 + 109, 60, "t2") is None
    assert await store.take(T0 + 110, 60, "t2") is not None


async def test_a_job_whose_lease_ended_is_taken_by_another_worker(open_store: StoreFactory) -> None:
    first, second = open_store(), open_store()
    await first.put(job())
    assert await first.take(T0, 60, "dies") is not None
    again = await second.take(T0 + 60, 60, "takes-over")
    assert again is not None and again.key == "log:u1:sip:c1"


async def test_workers_taking_at_once_each_get_a_different_job(open_store: StoreFactory) -> None:
    for key in "abcdef":
        await open_store().put(job(key))
    workers = [open_store() for _ in range(6)]
    taken = await asyncio.gather(*(w.take(T0, 60, f"t{n}") for n, w in enumerate(workers)))
    assert sorted(t.key for t in taken if t is not None) == list("abcdef")


async def test_the_worker_that_lost_its_lease_settles_nothing(store: JobStore) -> None:
    await store.put(job())
    stale = await store.take(T0, 60, "slow")
    fresh = await store.take(T0 + 60, 60, "fresh")
    assert stale is not None and fresh is not None
    assert await store.complete(stale, T0 + 61) is False
    assert await store.reschedule(stale, T0 + 100, "transient") is False
    assert await store.bury(stale, "rejected", T0 + 61) is False
    assert await store.renew(stale, T0 + 61) is False
    assert await store.take(T0 + 62, 60, "third") is None  # the fresh lease still runs
    assert await store.complete(fresh, T0 + 61) is True


async def test_a_restart_loses_no_job(open_store: StoreFactory) -> None:
    before = open_store()
    await before.put(job())
    await before.close()
    after = open_store()
    taken = await after.take(T0, 60, "t1")
    assert taken is not None and taken.key == "log:u1:sip:c1"


async def test_a_rescheduled_job_counts_its_attempts_and_keeps_its_reason(store: JobStore) -> None:
    await store.put(job())
    taken = await store.take(T0, 60, "t1")
    assert taken is not None
    assert await store.reschedule(taken, T0 + 10, "transient")
    assert await store.take(T0 + 9, 60, "t2") is None
    again = await store.take(T0 + 10, 60, "t2")
    assert again is not None and (again.attempts, again.reason) == (1, "transient")


async def test_a_buried_job_is_a_dead_letter_with_its_reason(store: JobStore) -> None:
    await store.put(job())
    taken = await store.take(T0, 60, "t1")
    assert taken is not None
    assert await store.bury(taken, "rejected: 400 bad property", T0 + 1)
    assert await store.take(T0 + 1000, 60, "t2") is None
    [dead] = await store.dead_letters()
    assert (dead.key, dead.kind, dead.reason, dead.attempts) == (
        "log:u1:sip:c1",
        "log",
        "rejected: 400 bad property",
        1,
    )
    assert dead.payload == {"call": "sip:c1"}


async def test_stats_count_the_jobs_waiting_the_oldest_and_the_dead(store: JobStore) -> None:
    await store.put(job("a", created=T0 + 5, due=T0 + 6))
    await store.put(job("b", created=T0, due=T0 + 1))
    await store.put(job("c", created=T0 + 9, due=T0 + 10))
    taken = await store.take(T0 + 100, 60, "t1")
    assert taken is not None and taken.key == "b"  # the most overdue first
    await store.bury(taken, "rejected", T0 + 100)
    stats = await store.stats()
    assert (stats.depth, stats.oldest_created_at, stats.dead) == (2, T0 + 5, 1)


async def test_every_redis_key_of_the_outbox_shares_one_cluster_slot(redis_server: RedisServer) -> None:
    store = RedisStore(redis_server.url, "gw")
    try:
        for key in ("a", "b", "c"):
            await store.put(job(key))
        done, dead = await store.take(T0, 60, "t1"), await store.take(T0, 60, "t2")
        assert done is not None and dead is not None
        await store.complete(done, T0)
        await store.bury(dead, "rejected", T0)
    finally:
        await store.close()
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        keys = [str(key) for key in await client.keys("*")]
    finally:
        await client.aclose()
    assert keys and all(key.startswith("{gw:outbox}:") for key in keys)


async def test_parked_jobs_are_woken_to_run_now_and_others_keep_their_time(store: JobStore) -> None:
    await store.put(job("log:u1:sip:parked", due=T0))
    await store.put(job("log:u1:sip:backoff", due=T0 + 1))
    await store.put(job("log:u1:sip:held", due=T0 + 2))
    for reason in ("unauthorized", "transient"):
        taken = await store.take(T0 + 2, 60, "t1")
        assert taken is not None
        assert await store.reschedule(taken, T0 + 300, reason)
    assert await store.take(T0 + 2, 60, "t2") is not None  # held by a worker: its lease stays
    assert await store.wake(("unauthorized", "not_connected"), T0 + 3) == 1
    woken = await store.take(T0 + 3, 60, "t3")
    assert woken is not None and woken.key == "log:u1:sip:parked"
    assert await store.take(T0 + 3, 60, "t4") is None


_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|.)")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "a": "\a", "b": "\b"}


def _words(line: str) -> tuple[str, list[str]]:
    """A MONITOR line's client ("lua" inside a script) and its command's words, unescaped."""
    client = line.split("[", 1)[1].split("]", 1)[0].split(" ", 1)[1]

    def unescape(match: re.Match[str]) -> str:
        code = match.group(1)
        return chr(int(code[1:], 16)) if code.startswith("x") else _ESCAPES.get(code, code)

    return client, [_ESCAPE.sub(unescape, word) for word in _QUOTED.findall(line)]


async def script_keys(port: int, run: Callable[[], Awaitable[None]]) -> list[tuple[set[str], set[str]]]:
    """Each script ``run`` had the server run: the keys it declared (KEYS) and those it touched.

    MONITOR lists each EVAL/EVALSHA with its KEYS and then the commands the
    script ran; COMMAND GETKEYS names the keys of each of those.
    """
    # MONITOR's answers are RESP simple strings, one a line (the server escapes any line break).
    with (
        sync_redis.Redis(port=port, decode_responses=True) as server,
        socket.create_connection(("127.0.0.1", port)) as monitor,
        monitor.makefile("rb") as lines,
    ):
        monitor.sendall(b"MONITOR\r\n")
        assert lines.readline() == b"+OK\r\n"
        await run()
        server.echo("end-of-run")
        runs: list[tuple[set[str], set[str]]] = []
        while True:
            client, words = _words(lines.readline().decode()[1:].rstrip("\r\n"))
            command = words[0].upper()
            if command == "ECHO" and words[1:] == ["end-of-run"]:
                return runs
            if command in ("EVAL", "EVALSHA"):
                runs.append((set(words[3 : 3 + int(words[2])]), set()))
            elif client == "lua":
                runs[-1][1].update(cast(list[str], server.command_getkeys(*words)))


def _holds_the_outbox(node: Node) -> bool:
    with node.client() as client:
        try:
            client.exists("{gw:outbox}:due")
        except sync_redis.exceptions.ResponseError:  # MOVED to the node that has the slot
            return False
    return True


@pytest.fixture(params=["one server", "cluster"])
def outbox_redis(request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    """A Redis URL, and the port of the server that holds the outbox's slot."""
    if request.param == "one server":
        server: RedisServer = request.getfixturevalue("redis_server")
        yield server.url, server.port
        return
    cluster: ClusterSetup = request.getfixturevalue("cluster")
    yield cluster.url, next(node.port for node in cluster.nodes if _holds_the_outbox(node))


async def test_every_key_a_redis_script_touches_is_one_of_its_keys(outbox_redis: tuple[str, int]) -> None:
    """Redis Cluster's rule for scripts, whatever slot the keys are in."""
    url, port = outbox_redis

    async def a_jobs_whole_life() -> None:
        store = RedisStore(url, "gw")
        try:
            for key in ("a", "b", "c"):
                await store.put(job(key))
            parked = await store.take(T0, 60, "t1")
            assert parked is not None and await store.reschedule(parked, T0 + 300, "unauthorized")
            assert await store.wake(("unauthorized",), T0 + 1) == 1
            done, dead = await store.take(T0 + 1, 60, "t2"), await store.take(T0 + 1, 60, "t3")
            assert done is not None and dead is not None
            assert await store.complete(done, T0 + 2) and await store.bury(dead, "rejected", T0 + 2)
        finally:
            await store.close()

    runs = await script_keys(port, a_jobs_whole_life)
    assert len([touched for _, touched in runs if touched]) == 10  # put 3, take 3, and one of each other
    assert [touched - declared for declared, touched in runs if touched - declared] == []
