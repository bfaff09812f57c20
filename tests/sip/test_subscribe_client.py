"""Subscriber mode end to end: fake PBX -> SIP -> call model -> broker -> SSE."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.sources.sip.subscribe_rules import MIN_RESTART_SECONDS
from gateway.users.reload import DirectoryWatcher
from tests.support import harness
from tests.support.fakepbx import FakePbx, dialog_info
from tests.support.harness import Client
from tests.support.logcheck import expect_log
from tests.support.servers import RedisServer, write_users
from tests.support.sipkit import confirmed, ended, ringing, sip_gateway, sip_service, sip_table


@pytest.mark.parametrize("kind", ["udp", "tcp"])
async def test_a_notify_after_a_digest_challenge_rings_the_users_stream(tmp_path: Path, kind: str) -> None:
    async with FakePbx(kind) as pbx, sip_gateway(tmp_path, sip_table(pbx)) as gw:
        token = await gw.login("alice")
        async with gw.stream(token) as stream:
            sub = await pbx.subscribed("1001")
            assert pbx.challenges_sent >= 1
            assert sub.subscribes[-1].get("event") == "dialog"
            assert sub.subscribes[-1].get("accept") == "application/dialog-info+xml"
            answer = await pbx.notify("1001", [ringing("call-1")])
            assert answer.status == 200
            event = await stream.next()
        assert event.json["type"] == "incomingCall"
        assert event.json["payload"]["fromNumber"] == "+15555550199"
        assert event.json["payload"]["toNumber"] == "+15555550101"  # alice's number, not "1001"


async def test_a_retransmitted_notify_is_answered_again_and_gives_one_event(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with (
        FakePbx("udp") as pbx,
        sip_gateway(tmp_path, sip_table(pbx), redis_url=redis_server.url) as gw,
    ):
        token = await gw.login("alice")
        async with gw.stream(token) as stream:
            sub = await pbx.subscribed("1001")
            branch, data = pbx.notify_bytes(sub, pbx.document(sub, [ringing("r1")]))
            first = await pbx.transact(sub, branch, data)
            again = await pbx.transact(sub, branch, data)
            assert first.status == again.status == 200
            assert first.headers == again.headers
            metrics = (await gw.http.get("/metrics")).text
            assert "gateway_sip_retransmissions_total 1.0" in metrics
            await pbx.notify("1001", [confirmed("r1")])
            events = await stream.take(2)
            assert [e.json["type"] for e in events] == ["incomingCall", "callAnswered"]
            assert stream.drain() == []


async def test_duplicated_and_reordered_notifies_give_each_event_once(tmp_path: Path) -> None:
    async with FakePbx("tcp") as pbx, sip_gateway(tmp_path, sip_table(pbx)) as gw:
        token = await gw.login("alice")
        async with gw.stream(token) as stream:
            sub = await pbx.subscribed("1001")
            # v2 overtakes v1, v1 comes late and twice (new transactions), v3 twice.
            for version in (2, 1, 1, 3, 3):
                branch, data = pbx.notify_bytes(sub, dialog_info(sub.aor, version, [_dialog(version)]))
                assert (await pbx.transact(sub, branch, data)).status == 200
            events = await stream.take(4)
            types = [e.json["type"] for e in events]
            assert types == ["incomingCall", "callAnswered", "callEnded", "callCompleted"]
            assert events[2].json["payload"]["callEndStatus"] == "COMPLETED"
            assert stream.drain() == []


def _dialog(version: int) -> dict[str, object]:
    return {1: ringing("o1"), 2: confirmed("o1"), 3: ended("o1", event="bye")}[version]


async def test_sha256_digest_challenges_are_answered(tmp_path: Path) -> None:
    async with FakePbx("udp", algorithm="SHA-256") as pbx, sip_gateway(tmp_path, sip_table(pbx)):
        sub = await pbx.subscribed("1001")
        assert "algorithm=SHA-256" in (sub.subscribes[-1].get("authorization") or "")


async def test_a_refresh_is_sent_before_the_subscription_expires(tmp_path: Path) -> None:
    async with FakePbx("udp") as pbx, sip_gateway(tmp_path, sip_table(pbx, pbx_extra={"expires": 1})):
        first = await pbx.subscribed("1001")
        again = await pbx.subscribed("1001")
        assert again.call_id == first.call_id  # an in-dialog refresh, not a new subscription
        assert len(again.subscribes) >= 2


async def test_a_terminated_subscription_is_subscribed_again(tmp_path: Path) -> None:
    async with FakePbx("udp") as pbx, sip_gateway(tmp_path, sip_table(pbx)) as gw:
        token = await gw.login("alice")
        async with gw.stream(token) as stream:
            first = await pbx.subscribed("1001")
            answer = await pbx.notify("1001", [], state="terminated;reason=deactivated")
            assert answer.status == 200
            second = await pbx.subscribed("1001")
            assert second.call_id != first.call_id
            await pbx.notify("1001", [ringing("t1")])
            assert (await stream.next()).json["type"] == "incomingCall"


async def test_a_pbx_restart_is_noticed_by_the_481_to_a_refresh(tmp_path: Path) -> None:
    async with FakePbx("udp") as pbx, sip_gateway(tmp_path, sip_table(pbx, pbx_extra={"expires": 1})):
        first = await pbx.subscribed("1001")
        pbx.restart()
        second = await pbx.subscribed("1001")
        assert second.call_id != first.call_id
        refused = [r for r in pbx.requests if r.call_id == first.call_id]
        assert len(refused) >= 2  # the refresh that got 481 was in the old dialog


async def test_a_refused_subscription_is_tried_again(tmp_path: Path) -> None:
    async with FakePbx("udp") as pbx:
        pbx.refuse["1001"] = 503
        async with sip_gateway(tmp_path, sip_table(pbx)):
            await pbx.subscribed("1001")
            assert "1001" not in pbx.refuse  # the refusal was served first


async def test_a_subscribe_timeout_is_retried(tmp_path: Path) -> None:
    async with FakePbx("udp") as pbx:
        pbx.silent = True
        async with sip_gateway(tmp_path, sip_table(pbx, t1_seconds=0.01)) as gw:
            first = await pbx.request_seen("1001")
            while (await pbx.request_seen("1001")).call_id == first.call_id:
                pass  # retransmissions of the first attempt, until it times out
            assert (await gw.http.get("/readyz")).status_code == 503
            pbx.silent = False
            await pbx.subscribed("1001")


async def test_a_lost_tcp_connection_leads_to_a_new_subscription(tmp_path: Path) -> None:
    async with FakePbx("tcp") as pbx, sip_gateway(tmp_path, sip_table(pbx)):
        first = await pbx.subscribed("1001")
        await pbx.subscribed("1002")
        pbx.drop_connections()
        again = await pbx.subscribed("1001")
        assert again.call_id != first.call_id


async def test_a_notify_for_an_unknown_subscription_is_answered_481(tmp_path: Path) -> None:
    async with FakePbx("udp") as pbx, sip_gateway(tmp_path, sip_table(pbx)):
        sub = await pbx.subscribed("1001")
        sub.call_id = "not-a-subscription"
        answer = await pbx.notify("1001", [ringing("x1")])
        assert answer.status == 481


async def test_a_version_gap_asks_for_full_state_with_a_refresh(tmp_path: Path) -> None:
    async with FakePbx("udp") as pbx, sip_gateway(tmp_path, sip_table(pbx)) as gw:
        token = await gw.login("alice")
        async with gw.stream(token) as stream:
            sub = await pbx.subscribed("1001")
            await pbx.notify("1001", [ringing("g1")])
            sub.version += 1  # this partial NOTIFY is lost on the way
            await pbx.notify("1001", [confirmed("g1")], doc_state="partial")
            refreshed = await pbx.subscribed("1001")
            assert refreshed.call_id == sub.call_id
            await pbx.notify("1001", [ended("g1", event="bye")])
            types = [e.json["type"] for e in await stream.take(4)]
            assert types == ["incomingCall", "callAnswered", "callEnded", "callCompleted"]


async def test_health_is_in_metrics_and_readyz(tmp_path: Path) -> None:
    async with FakePbx("udp") as pbx, sip_gateway(tmp_path, sip_table(pbx)) as gw:
        await pbx.subscribed("1001")
        await pbx.subscribed("1002")
        ready = await gw.http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"]["sip"]["detail"].startswith("2/2")
        metrics = (await gw.http.get("/metrics")).text
        assert 'gateway_sip_subscription_up{aor="sip:1001@pbx.test",tenant="100",user="alice"} 1.0' in metrics


async def test_users_added_and_removed_at_run_time_are_subscribed_and_unsubscribed(tmp_path: Path) -> None:
    async with FakePbx("udp") as pbx, sip_gateway(tmp_path, sip_table(pbx)) as gw:
        await pbx.subscribed("1001")
        await pbx.subscribed("1002")
        users = [u for u in harness.test_users() if u["login"] != "bob"]
        users.append(
            {
                **harness.test_users()[0],
                "login": "carol",
                "hubspot_user_id": 503,
                "aors": ["sip:1003@pbx.test"],
            }
        )
        users[-1]["numbers"] = []
        write_users(gw.gateway.settings.users_file, users)
        watcher = next(c for c in gw.gateway.components if isinstance(c, DirectoryWatcher))
        await watcher.check()  # or its own timer gets there first: either way
        gone = await pbx.unsubscribed("1002")
        assert gone.subscribes[-1].get("expires") == "0"
        await pbx.subscribed("1003")


@contextlib.asynccontextmanager
async def refused_during_an_outage(
    tmp_path: Path, redis_server: RedisServer
) -> AsyncIterator[tuple[FakePbx, Client, str]]:
    """A PBX whose NOTIFY ringing d1 came while Redis was down; Redis is back."""
    async with (
        FakePbx("udp") as pbx,
        sip_gateway(tmp_path, sip_table(pbx), redis_url=redis_server.url) as gw,
    ):
        token = await gw.login("alice")
        await pbx.subscribed("1001")
        redis_server.stop()
        refused = await pbx.notify("1001", [ringing("d1")])
        assert refused.status == 503
        assert refused.get("retry-after") is not None
        redis_server.start()
        await gw.until_ready()
        yield pbx, gw, token


async def test_a_notify_during_a_redis_outage_is_answered_503_and_later_calls_flow(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with refused_during_an_outage(tmp_path, redis_server) as (pbx, gw, token):
        async with gw.stream(token) as stream:  # as the browser does: a new stream
            answered = await pbx.notify("1001", [ringing("d2")])
            assert answered.status == 200, answered.first
            events = [(e.json["externalCallId"], e.json["type"]) for e in await stream.take(4)]
        # d1 is not lost: the full state without it ends it, so it shows up as a missed call.
        assert events == [
            ("sip:d1", "incomingCall"),
            ("sip:d1", "callEnded"),
            ("sip:d1", "callCompleted"),
            ("sip:d2", "incomingCall"),
        ]


async def test_a_call_refused_during_an_outage_rings_with_the_next_notify(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with (
        refused_during_an_outage(tmp_path, redis_server) as (pbx, gw, token),
        gw.stream(token) as stream,
    ):
        # Still ringing: the undelivered signal is handed over with this one.
        assert (await pbx.notify("1001", [ringing("d1")])).status == 200
        event = await stream.next()
    assert (event.json["externalCallId"], event.json["type"]) == ("sip:d1", "incomingCall")


async def test_a_notify_answered_with_an_error_starts_the_subscription_again(tmp_path: Path) -> None:
    async with FakePbx("udp") as pbx, sip_gateway(tmp_path, sip_table(pbx)):
        first = await pbx.subscribed("1001")
        answer = await pbx.notify("1001", [ringing("e1")], event="presence")
        assert answer.status == 489
        again = await pbx.subscribed("1001")
        assert again.call_id != first.call_id


async def test_a_notify_that_crashes_the_handler_starts_the_subscription_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FakePbx("udp") as pbx, sip_gateway(tmp_path, sip_table(pbx)) as gw:
        first = await pbx.subscribed("1001")

        async def broken(*args: object) -> None:
            raise RuntimeError("injected fault")

        monkeypatch.setattr(sip_service(gw).subscriber.delivery, "apply", broken)
        with expect_log("gateway.sip", "NOTIFY .* failed"):
            answer = await pbx.notify("1001", [ringing("e2")])
        assert answer.status == 500
        again = await pbx.subscribed("1001")
        assert again.call_id != first.call_id


async def test_a_subscription_ended_at_once_is_not_started_again_within_a_second(tmp_path: Path) -> None:
    async with FakePbx("udp") as pbx, sip_gateway(tmp_path, sip_table(pbx)):
        await pbx.subscribed("1001")
        await pbx.notify("1001", [], state="terminated;reason=deactivated")
        ended_at = time.monotonic()
        await pbx.subscribed("1001")
        assert time.monotonic() - ended_at >= MIN_RESTART_SECONDS * 0.95


async def test_accept_then_terminate_loops_keep_counting_failures(tmp_path: Path) -> None:
    async with FakePbx("udp") as pbx, sip_gateway(tmp_path, sip_table(pbx)) as gw:
        await pbx.subscribed("1001")
        for _ in range(2):
            await pbx.notify("1001", [], state="terminated;reason=deactivated")
            await pbx.subscribed("1001")
        await pbx.notify("1001", [])  # answered only after the accepting 200 was handled
        sub = sip_service(gw).subscriber.subscriptions[("alice", "sip:1001@pbx.test")]
        assert sub.failures == 2


async def test_a_lost_tcp_connection_fails_the_subscribe_in_flight_at_once(tmp_path: Path) -> None:
    async with FakePbx("tcp") as pbx:
        pbx.silent = True
        # T1 0.5 s: a SUBSCRIBE left to time out would take 32 s (Timer F).
        async with sip_gateway(tmp_path, sip_table(pbx, t1_seconds=0.5)):
            await pbx.request_seen("1001")
            pbx.silent = False
            pbx.drop_connections()
            await pbx.subscribed("1001")


async def test_a_pbx_address_that_stops_answering_is_looked_up_again(tmp_path: Path) -> None:
    async with FakePbx("udp") as pbx:
        table = sip_table(pbx, pbx_extra={"expires": 1}, t1_seconds=0.01)
        async with sip_gateway(tmp_path, table) as gw:
            await pbx.subscribed("1001")
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as dead:
                dead.bind(("127.0.0.1", 0))  # bound and never read: nothing answers there
                subscriber = sip_service(gw).subscriber
                for key in subscriber._resolved:
                    subscriber._resolved[key] = dead.getsockname()  # a stale DNS answer
                await pbx.subscribed("1001")


async def test_subscribe_allows_publish_only_when_publish_from_is_set(tmp_path: Path) -> None:
    async with FakePbx("udp") as pbx, sip_gateway(tmp_path, sip_table(pbx)):
        sub = await pbx.subscribed("1001")
        assert sub.subscribes[-1].get("allow") == "NOTIFY, OPTIONS"
