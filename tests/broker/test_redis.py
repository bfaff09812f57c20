"""Several gateway instances against one real redis-server."""

from __future__ import annotations

import asyncio
import contextlib
import signal as signal_module
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from gateway.broker import redis as redis_broker
from gateway.broker.redis import commands as redis_commands
from gateway.broker.redis import direct as redis_direct
from gateway.broker.redis import topology as redis_topology
from tests.support import logcheck
from tests.support.harness import Client, make_settings, running_gateway, signal
from tests.support.servers import RedisServer


@contextlib.asynccontextmanager
async def two_instances(tmp_path: Path, redis_server: RedisServer) -> AsyncIterator[tuple[Client, Client]]:
    settings = make_settings(tmp_path, redis_url=redis_server.url)
    async with running_gateway(settings) as one, running_gateway(settings) as two:
        yield one, two


async def test_an_event_entering_one_instance_reaches_a_stream_on_another(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with two_instances(tmp_path, redis_server) as (one, two):
        token = await one.login("alice")  # a token from one instance works on the other
        async with two.stream(token) as stream:
            assert (await one.ingest(signal("x1", "ringing"))).status_code == 202
            event = await stream.next()
    assert event.json["type"] == "incomingCall"
    assert event.json["externalCallId"] == "ingest:x1"


async def test_the_same_signal_on_two_instances_emits_one_event(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with two_instances(tmp_path, redis_server) as (one, two):
        token = await one.login("alice")
        async with one.stream(token) as stream:
            for n in range(20):
                body = signal(f"dup{n}", "ringing")
                await asyncio.gather(one.ingest(body), two.ingest(body), one.ingest(body))
            events = await stream.take(20)
            await one.ingest(signal("marker", "ringing"))
            marker = await stream.next()
    assert sorted(e.json["externalCallId"] for e in events) == sorted(f"ingest:dup{n}" for n in range(20))
    assert marker.json["externalCallId"] == "ingest:marker"


async def test_a_ticket_used_on_one_instance_is_refused_on_another(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with two_instances(tmp_path, redis_server) as (one, two):
        ticket = await one.stream_ticket(await one.login("alice"))
        async with one.stream(None, query=f"?ticket={ticket}") as first:
            assert first.status == 200
            status, refusal = await two.open_stream(f"?ticket={ticket}")
    assert status == 401
    assert "already used" in refusal["error"]


async def test_a_ticket_offered_to_two_instances_at_once_opens_one_stream(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with two_instances(tmp_path, redis_server) as (one, two):
        token = await one.login("alice")
        for _ in range(10):
            ticket = await two.stream_ticket(token)
            async with contextlib.AsyncExitStack() as streams:
                opened = await asyncio.gather(
                    *(
                        streams.enter_async_context(gw.stream(None, query=f"?ticket={ticket}"))
                        for gw in (one, two)
                    )
                )
                assert sorted(s.status or 0 for s in opened) == [200, 401]


async def test_resume_on_another_instance_replays_from_shared_history(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with two_instances(tmp_path, redis_server) as (one, two):
        token = await one.login("alice")
        async with one.stream(token) as stream:
            await one.ingest(signal("h1", "ringing"))
            seen = await stream.next()
        await two.ingest(signal("h1", "answered"))
        await one.ingest(signal("h1", "ended"))
        async with two.stream(token, last_event_id=seen.id) as resumed:
            events = await resumed.take(3)
            await one.ingest(signal("h2", "ringing"))
            live = await resumed.next()
    assert [e.json["type"] for e in events] == ["callAnswered", "callEnded", "callCompleted"]
    assert live.json["externalCallId"] == "ingest:h2"


async def test_streams_are_multiplexed_over_one_pubsub_connection(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with running_gateway(make_settings(tmp_path, redis_url=redis_server.url)) as gw:
        tokens = [await gw.login("alice"), await gw.login("bob")]
        streams = [gw.stream(tokens[i % 2]) for i in range(12)]
        for stream in streams:
            await stream.__aenter__()
        try:
            admin = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
            clients = await admin.client_list()
            await admin.aclose()
            subscribers = [c for c in clients if int(c.get("sub", 0)) > 0]
            assert len(subscribers) == 1
            assert int(subscribers[0]["sub"]) == 3  # alice, bob and the control channel
        finally:
            for stream in streams:
                await stream.close()


async def test_control_messages_it_cannot_read_are_ignored_and_calls_flow_on(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    settings = make_settings(tmp_path, redis_url=redis_server.url)
    async with running_gateway(settings) as gw:
        token = await gw.login("alice")
        async with gw.stream(token) as stream:
            admin = aioredis.Redis.from_url(redis_server.url)
            channel = f"{settings.key_prefix}:control"
            for garbage in (b"recover " + b"9" * 5000, b"recover -1", b"\xff\xfe", b"shutdown now"):
                assert await admin.publish(channel, garbage) == 1  # heard by the gateway
            await admin.aclose()
            assert (await gw.ingest(signal("after-garbage", "ringing"))).status_code == 202
            event = await stream.next()
    assert event.json["externalCallId"] == "ingest:after-garbage"


async def test_a_recovery_window_another_instance_announces_is_believed_only_so_long(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    settings = make_settings(tmp_path, redis_url=redis_server.url)
    async with running_gateway(settings) as gw:
        admin = aioredis.Redis.from_url(redis_server.url)
        assert await admin.publish(f"{settings.key_prefix}:control", b"recover 999999999") == 1
        await admin.aclose()
        broker = gw.gateway.broker
        assert isinstance(broker, redis_broker.RedisBroker)
        async with asyncio.timeout(5):
            while broker._recovering_until == 0.0:  # noqa: ASYNC110  (heard on the pub/sub task)
                await asyncio.sleep(0.01)
        left = broker._recovering_until - asyncio.get_running_loop().time()
    assert 0 < left <= 30


async def test_redis_outage_is_reported_and_recovered_from(tmp_path: Path, redis_server: RedisServer) -> None:
    async with running_gateway(make_settings(tmp_path, redis_url=redis_server.url)) as gw:
        token = await gw.login("alice")
        async with gw.stream(token) as stream:
            await gw.ingest(signal("o1", "ringing"))
            await stream.next()
            redis_server.stop()
            await asyncio.wait_for(stream.ended.wait(), 10)
        assert (await gw.http.get("/readyz")).status_code == 503
        assert (await gw.ingest(signal("o2", "ringing"))).status_code == 503
        redis_server.start()
        await gw.until_ready()
        async with gw.stream(token) as stream:
            assert (await gw.ingest(signal("o3", "ringing"))).status_code == 202
            assert (await stream.next()).json["externalCallId"] == "ingest:o3"


async def test_every_route_that_needs_redis_answers_503_with_a_reason_while_it_is_down(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with running_gateway(make_settings(tmp_path, redis_url=redis_server.url)) as gw:
        token = await gw.login("alice")
        assert (await gw.ingest(signal("d1", "ringing"))).status_code == 202
        redis_server.stop()
        auth = {"authorization": f"Bearer {token}"}
        answers = [
            await gw.http.get("/api/stream", headers=auth),
            await gw.http.get("/api/calls/ingest:d1", headers=auth),
            await gw.http.post("/api/calls/ingest:d1/engagement", json={"engagementId": 7}, headers=auth),
            await gw.ingest(signal("d2", "ringing")),
        ]
        assert [r.status_code for r in answers] == [503] * 4
        assert all(r.json()["error"].startswith("event broker unavailable") for r in answers)
        metrics = (await gw.http.get("/metrics")).text
        assert 'gateway_rejected_total{reason="broker-down",where="/api/stream"} 1.0' in metrics


async def test_a_stream_that_drops_before_its_first_event_loses_nothing(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with two_instances(tmp_path, redis_server) as (one, two):
        token = await one.login("alice")
        async with one.stream(token) as empty_history:
            pass
        assert empty_history.head_id == "0-0"
        await one.ingest(signal("f1", "ringing"))
        async with two.stream(token, last_event_id=empty_history.head_id) as resumed:
            first = await resumed.next()
        async with one.stream(token) as fresh:
            pass
        assert fresh.head_id == first.id
        await one.ingest(signal("f1", "answered"))
        async with two.stream(token, last_event_id=fresh.head_id) as resumed:
            second = await resumed.next()
    assert first.json["type"] == "incomingCall"
    assert second.json["type"] == "callAnswered"


async def ingest_past_trimming(gw: Client, prefix: str) -> None:
    """400 calls: MAXLEN ~ trims whole nodes (100 entries by default), so well past a history of 10."""
    for batch in range(4):
        calls = [signal(f"{prefix}{batch}-{n}", "ringing") for n in range(100)]
        assert (await gw.ingest({"signals": calls})).status_code == 202


async def resumed_after(gw: Client, token: str, last_event_id: str) -> tuple[str, str]:
    """What a stream resumed after ``last_event_id`` sends first, and next: the events' kinds."""
    async with gw.stream(token, last_event_id=last_event_id) as resumed:
        gap = await resumed.next()
        first = await resumed.next()
    return gap.event, first.event


async def test_a_resume_after_redis_trimmed_the_history_says_there_is_a_gap(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    settings = make_settings(tmp_path, redis_url=redis_server.url, history_size=10)
    async with running_gateway(settings) as gw:
        token = await gw.login("alice")
        async with gw.stream(token) as stream:
            await gw.ingest(signal("g0", "ringing"))
            seen = await stream.next()
        await ingest_past_trimming(gw, "g")
        assert await resumed_after(gw, token, seen.id) == ("gap", "sdk")


async def test_a_resume_from_an_empty_historys_hello_after_trimming_says_there_is_a_gap(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    settings = make_settings(tmp_path, redis_url=redis_server.url, history_size=10)
    async with running_gateway(settings) as gw:
        token = await gw.login("alice")
        async with gw.stream(token) as empty_history:
            pass
        assert empty_history.head_id == "0-0"
        await ingest_past_trimming(gw, "e")
        assert await resumed_after(gw, token, empty_history.head_id) == ("gap", "sdk")


async def test_a_resume_from_an_empty_historys_hello_gets_all_of_an_untrimmed_history_without_a_gap(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    settings = make_settings(tmp_path, redis_url=redis_server.url, history_size=10)
    async with running_gateway(settings) as gw:
        token = await gw.login("alice")
        async with gw.stream(token) as empty_history:
            pass
        calls = [signal(f"u{n}", "ringing") for n in range(10)]
        assert (await gw.ingest({"signals": calls})).status_code == 202
        async with gw.stream(token, last_event_id=empty_history.head_id) as resumed:
            events = await resumed.take(10)
    assert [e.event for e in events] == ["sdk"] * 10
    assert [e.json["externalCallId"] for e in events] == [f"ingest:u{n}" for n in range(10)]


# An instance first tries a signal against the state it last saw itself (one
# round trip); the tests below make that state stale in each way it can be.


async def test_a_signal_tried_on_a_stale_state_emits_nothing_twice(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with two_instances(tmp_path, redis_server) as (one, two):
        token = await one.login("alice")
        async with one.stream(token) as stream:
            await one.ingest(signal("s1", "ringing"))  # one remembers the call as ringing
            await two.ingest(signal("s1", "answered"))  # but it moved on through two
            again = await one.ingest(signal("s1", "answered"))
            await one.ingest(signal("s1", "ended"))
            events = await stream.take(4)
            await one.ingest(signal("marker", "ringing"))
            marker = await stream.next()
    assert again.status_code == 202
    assert again.json()["events"] == []
    assert [e.json["type"] for e in events] == ["incomingCall", "callAnswered", "callEnded", "callCompleted"]
    # Decided on the stored (answered) state, not the remembered (ringing) one.
    assert events[2].json["payload"]["callEndStatus"] == "COMPLETED"
    assert marker.json["externalCallId"] == "ingest:marker"


async def test_an_engagement_for_a_call_seen_only_by_another_instance_is_kept(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with two_instances(tmp_path, redis_server) as (one, two):
        auth = {"authorization": f"Bearer {await one.login('alice')}"}
        await one.ingest(signal("g1", "ringing"))
        response = await two.http.post(
            "/api/calls/ingest:g1/engagement", json={"engagementId": 77}, headers=auth
        )
    assert response.status_code == 200
    assert response.json()["engagementId"] == 77


async def test_a_call_that_expired_in_redis_starts_over_though_the_instance_remembers_it(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    settings = make_settings(tmp_path, redis_url=redis_server.url, call_ttl_seconds=1)
    admin = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    await admin.config_set("notify-keyspace-events", "Ex")
    expired = admin.pubsub()
    await expired.subscribe("__keyevent@0__:expired")
    async with running_gateway(settings) as gw:
        first = await gw.ingest(signal("x1", "ringing"))
        try:
            # Redis tells when the call's state expired (call_ttl_seconds).
            async with asyncio.timeout(5):
                async for message in expired.listen():
                    if str(message["data"]).endswith(":call:ingest:x1"):
                        break
        finally:
            await expired.aclose()  # type: ignore[no-untyped-call]
            await admin.aclose()
        # Unchanged by the remembered state, yet not by the stored one.
        again = await gw.ingest(signal("x1", "ringing"))
    assert len(first.json()["events"]) == 1
    assert len(again.json()["events"]) == 1


async def test_a_call_redis_forgot_before_its_ttl_keeps_what_the_instance_remembers(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with running_gateway(make_settings(tmp_path, redis_url=redis_server.url)) as gw:
        token = await gw.login("alice")
        async with gw.stream(token) as stream:
            await gw.ingest(signal("x1", "ringing"))
            await gw.ingest(signal("x1", "answered"))
            admin = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
            try:
                # As a failover to a replica that never got the call would.
                assert await admin.delete(*await admin.keys("*:call:ingest:x1")) == 1
            finally:
                await admin.aclose()
            again = await gw.ingest(signal("x1", "ringing"))
            await gw.ingest(signal("x1", "ended"))
            events = await stream.take(4)
    assert again.json()["events"] == []
    assert [e.json["type"] for e in events] == ["incomingCall", "callAnswered", "callEnded", "callCompleted"]
    assert events[2].json["payload"]["callEndStatus"] == "COMPLETED"


async def test_a_redis_that_stops_answering_gets_503_within_the_command_deadline(
    tmp_path: Path, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_commands, "COMMAND_SECONDS", 0.5)
    async with running_gateway(make_settings(tmp_path, redis_url=redis_server.url)) as gw:
        assert (await gw.ingest(signal("p1", "ringing"))).status_code == 202
        assert redis_server.proc is not None
        redis_server.proc.send_signal(signal_module.SIGSTOP)  # alive, connected, silent
        try:
            response = await asyncio.wait_for(gw.ingest(signal("p2", "ringing")), 5)
        finally:
            redis_server.proc.send_signal(signal_module.SIGCONT)
    assert response.status_code == 503


async def test_more_commands_at_once_than_pooled_connections_all_succeed(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with running_gateway(make_settings(tmp_path, redis_url=redis_server.url)) as gw:
        broker = gw.gateway.broker
        assert isinstance(broker, redis_broker.RedisBroker)
        calls = [broker.get_call("alice", f"ingest:n{i}") for i in range(3 * redis_topology.CONNECTIONS)]
        found = await asyncio.gather(*calls)
    assert found == [None] * len(calls)


async def test_one_request_for_several_users_keeps_each_users_signals_in_order(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    # Users' signals are advanced together (one pipelined round trip); a
    # user's own still one after the other, in the order sent.
    async with running_gateway(make_settings(tmp_path, redis_url=redis_server.url)) as gw:
        alice, bob = await gw.login("alice"), await gw.login("bob")
        async with gw.stream(alice) as to_alice, gw.stream(bob) as to_bob:
            body = {
                "signals": [
                    signal("a1", "ringing"),
                    signal("b1", "ringing", user="bob"),
                    signal("a1", "answered"),
                    signal("b1", "answered", user="bob"),
                    signal("a1", "ended"),
                    signal("a2", "ringing"),
                ]
            }
            response = await gw.ingest(body)
            alices, bobs = await to_alice.take(5), await to_bob.take(2)
    assert response.status_code == 202
    assert [(e.json["externalCallId"], e.json["type"]) for e in alices] == [
        ("ingest:a1", "incomingCall"),
        ("ingest:a1", "callAnswered"),
        ("ingest:a1", "callEnded"),
        ("ingest:a1", "callCompleted"),
        ("ingest:a2", "incomingCall"),
    ]
    assert [e.json["type"] for e in bobs] == ["incomingCall", "callAnswered"]
    # The answer lists the events in the order of the signals that emitted
    # them (ids are per user's history: alice's and bob's may be equal).
    a, b = [e.id for e in alices], [e.id for e in bobs]
    assert response.json()["events"] == [a[0], b[0], a[1], b[1], a[2], a[3], a[4]]


async def test_a_script_redis_forgot_is_loaded_again_and_the_signal_still_lands(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with running_gateway(make_settings(tmp_path, redis_url=redis_server.url)) as gw:
        token = await gw.login("alice")
        async with gw.stream(token) as stream:
            assert (await gw.ingest(signal("f1", "ringing"))).status_code == 202
            await stream.next()
            admin = aioredis.Redis.from_url(redis_server.url)
            await admin.script_flush()
            await admin.aclose()
            assert (await gw.ingest(signal("f2", "ringing"))).status_code == 202
            assert (await stream.next()).json["externalCallId"] == "ingest:f2"


async def test_several_users_signals_that_met_a_forgotten_script_all_land_with_one_load(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    # After a Redis restart every script of the first pipelines meets
    # NOSCRIPT: loaded once for them all, then run again together.
    async with running_gateway(make_settings(tmp_path, redis_url=redis_server.url)) as gw:
        alice, bob = await gw.login("alice"), await gw.login("bob")
        async with gw.stream(alice) as to_alice, gw.stream(bob) as to_bob:
            admin = aioredis.Redis.from_url(redis_server.url)
            try:
                await admin.script_flush()
                await admin.config_resetstat()
                body = {"signals": [signal("a1", "ringing"), signal("b1", "ringing", user="bob")]}
                assert (await gw.ingest(body)).status_code == 202
                loads = (await admin.info("commandstats")).get("cmdstat_script|load", {"calls": 0})
            finally:
                await admin.aclose()
            assert [(await to_alice.next()).json["externalCallId"]] == ["ingest:a1"]
            assert [(await to_bob.next()).json["externalCallId"]] == ["ingest:b1"]
    assert loads["calls"] == 1


async def test_a_pubsub_connection_that_falls_silent_is_dropped_and_its_streams_closed(
    tmp_path: Path, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Silent as long as two idle periods (the second after a PING): taken
    # for lost, as a closed connection is.
    monkeypatch.setattr(redis_direct, "IDLE_SECONDS", 0.2)
    monkeypatch.setattr(redis_commands, "COMMAND_SECONDS", 0.5)
    async with running_gateway(make_settings(tmp_path, redis_url=redis_server.url)) as gw:
        token = await gw.login("alice")
        async with gw.stream(token) as stream:
            assert redis_server.proc is not None
            redis_server.proc.send_signal(signal_module.SIGSTOP)  # alive, connected, silent
            try:
                await asyncio.wait_for(stream.ended.wait(), 5)
                assert (await gw.http.get("/readyz")).status_code == 503
            finally:
                redis_server.proc.send_signal(signal_module.SIGCONT)
        await gw.until_ready()
        async with gw.stream(token) as stream:
            assert (await gw.ingest(signal("s1", "ringing"))).status_code == 202
            assert (await stream.next()).json["externalCallId"] == "ingest:s1"


async def test_a_pubsub_listener_failing_on_a_bug_closes_its_streams_and_listens_again(
    tmp_path: Path, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not Redis trouble, so no loss check would explain it: the listener must
    # still not die with the gateway reporting ready and delivering nothing.
    failing = asyncio.Event()
    read = redis_direct.Subscriber.read

    async def read_or_fail(self: redis_direct.Subscriber) -> list[list[object]]:
        if failing.is_set():
            failing.clear()
            raise RuntimeError("a bug in the listener")
        return await read(self)

    monkeypatch.setattr(redis_direct.Subscriber, "read", read_or_fail)
    async with running_gateway(make_settings(tmp_path, redis_url=redis_server.url)) as gw:
        token = await gw.login("alice")
        with logcheck.expect_log("gateway.broker.redis", "pub/sub listener failed"):
            async with gw.stream(token) as stream:
                failing.set()
                assert (await gw.ingest(signal("b1", "ringing"))).status_code == 202
                await asyncio.wait_for(stream.ended.wait(), 5)
        await gw.until_ready()
        async with gw.stream(token) as stream:
            assert (await gw.ingest(signal("b2", "ringing"))).status_code == 202
            assert (await stream.next()).json["externalCallId"] == "ingest:b2"
