"""The PUBLISH receiver end to end: PUBLISH -> RFC 3903 -> call model -> SSE."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gateway.sources.sip.publish_server import PublishServer
from tests.support.fakepbx import FakePbx, Publisher, dialog_info
from tests.support.harness import Client
from tests.support.servers import RedisServer
from tests.support.sipkit import confirmed, ended, ringing, sip_address, sip_gateway, sip_service, sip_table

LOCAL = ["127.0.0.1"]
ALICE = "sip:1001@pbx.test"


@pytest.mark.parametrize("kind", ["udp", "tcp"])
async def test_published_dialog_states_reach_the_users_stream(
    tmp_path: Path, redis_server: RedisServer, kind: str
) -> None:
    async with (
        FakePbx(kind) as pbx,
        sip_gateway(tmp_path, sip_table(publish_from=LOCAL), redis_url=redis_server.url) as gw,
    ):
        publisher = Publisher(pbx, sip_address(gw, kind))
        token = await gw.login("alice")
        async with gw.stream(token) as stream:
            first = await publisher.publish(ALICE, dialog_info(ALICE, 1, [ringing("p1")]))
            assert first.status == 200
            etag = first.get("sip-etag")
            assert etag and first.get("expires") == "3600"
            second = await publisher.publish(ALICE, dialog_info(ALICE, 2, [confirmed("p1")]), etag=etag)
            assert second.status == 200
            third = await publisher.publish(
                ALICE, dialog_info(ALICE, 3, [ended("p1")]), etag=second.get("sip-etag")
            )
            assert third.status == 200
            types = [e.json["type"] for e in await stream.take(4)]
        assert types == ["incomingCall", "callAnswered", "callEnded", "callCompleted"]


async def test_a_call_from_another_users_extension_carries_that_users_number(tmp_path: Path) -> None:
    async with FakePbx("udp") as pbx, sip_gateway(tmp_path, sip_table(publish_from=LOCAL)) as gw:
        publisher = Publisher(pbx, sip_address(gw, "udp"))
        token = await gw.login("alice")
        async with gw.stream(token) as stream:
            # Bob's phone names itself by extension, at the PBX's address.
            from_bob = ringing("x1", remote="sip:1002@10.0.0.5")
            assert (await publisher.publish(ALICE, dialog_info(ALICE, 1, [from_bob]))).status == 200
            event = (await stream.next()).json
        assert event["type"] == "incomingCall"
        assert (event["payload"]["fromNumber"], event["payload"]["toNumber"]) == (
            "+15555550102",
            "+15555550101",
        )


async def test_a_refresh_without_body_gets_a_new_etag(tmp_path: Path) -> None:
    async with FakePbx("udp") as pbx, sip_gateway(tmp_path, sip_table(publish_from=LOCAL)) as gw:
        publisher = Publisher(pbx, sip_address(gw, "udp"))
        first = await publisher.publish(ALICE, dialog_info(ALICE, 1, [ringing("p2")]))
        refreshed = await publisher.publish(ALICE, etag=first.get("sip-etag"), expires=600)
        assert refreshed.status == 200
        assert refreshed.get("expires") == "600"
        assert refreshed.get("sip-etag") not in (None, first.get("sip-etag"))


async def test_an_unknown_etag_is_answered_412(tmp_path: Path) -> None:
    async with FakePbx("udp") as pbx, sip_gateway(tmp_path, sip_table(publish_from=LOCAL)) as gw:
        publisher = Publisher(pbx, sip_address(gw, "udp"))
        answer = await publisher.publish(ALICE, etag="made.up.tag.value")
        assert answer.status == 412


async def test_another_event_package_is_answered_489(tmp_path: Path) -> None:
    async with FakePbx("udp") as pbx, sip_gateway(tmp_path, sip_table(publish_from=LOCAL)) as gw:
        publisher = Publisher(pbx, sip_address(gw, "udp"))
        answer = await publisher.publish(ALICE, b"<presence/>", event="presence")
        assert answer.status == 489
        assert answer.get("allow-events") == "dialog"


async def test_a_publish_for_an_unknown_user_is_answered_404(tmp_path: Path) -> None:
    async with FakePbx("udp") as pbx, sip_gateway(tmp_path, sip_table(publish_from=LOCAL)) as gw:
        publisher = Publisher(pbx, sip_address(gw, "udp"))
        nobody = "sip:4040@pbx.test"
        answer = await publisher.publish(nobody, dialog_info(nobody, 1, [ringing("p3")]))
        assert answer.status == 404


async def test_removing_a_publication_ends_its_call(tmp_path: Path) -> None:
    async with FakePbx("udp") as pbx, sip_gateway(tmp_path, sip_table(publish_from=LOCAL)) as gw:
        publisher = Publisher(pbx, sip_address(gw, "udp"))
        token = await gw.login("alice")
        async with gw.stream(token) as stream:
            first = await publisher.publish(ALICE, dialog_info(ALICE, 1, [ringing("p4")]))
            removed = await publisher.publish(ALICE, etag=first.get("sip-etag"), expires=0)
            assert removed.status == 200
            types = [e.json["type"] for e in await stream.take(3)]
        assert types == ["incomingCall", "callEnded", "callCompleted"]


async def test_an_etag_issued_by_one_instance_is_accepted_by_another(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with (
        FakePbx("udp") as pbx,
        sip_gateway(tmp_path, sip_table(publish_from=LOCAL), redis_url=redis_server.url) as one,
        sip_gateway(tmp_path, sip_table(publish_from=LOCAL), redis_url=redis_server.url) as two,
    ):
        token = await one.login("alice")
        async with one.stream(token) as stream:
            first = await Publisher(pbx, sip_address(one, "udp")).publish(
                ALICE, dialog_info(ALICE, 1, [ringing("p5")])
            )
            second = await Publisher(pbx, sip_address(two, "udp")).publish(
                ALICE, dialog_info(ALICE, 2, [confirmed("p5")]), etag=first.get("sip-etag")
            )
            assert second.status == 200
            types = [e.json["type"] for e in await stream.take(2)]
        assert types == ["incomingCall", "callAnswered"]


async def test_a_publish_from_a_source_outside_publish_from_is_forbidden(tmp_path: Path) -> None:
    table = sip_table(publish_from=["10.0.0.0/8", "fd00::/8"])
    async with FakePbx("udp") as pbx, sip_gateway(tmp_path, table) as gw:
        answer = await Publisher(pbx, sip_address(gw, "udp")).publish(
            ALICE, dialog_info(ALICE, 1, [ringing("p6")])
        )
        assert answer.status == 403
        metrics = (await gw.http.get("/metrics")).text
        assert 'gateway_rejected_total{reason="PublishForbidden",where="sip/udp"} 1.0' in metrics


async def test_publish_is_not_offered_without_publish_from(tmp_path: Path) -> None:
    async with FakePbx("udp") as pbx, sip_gateway(tmp_path, sip_table()) as gw:
        answer = await Publisher(pbx, sip_address(gw, "udp")).publish(
            ALICE, dialog_info(ALICE, 1, [ringing("p7")])
        )
        assert answer.status == 405
        assert "PUBLISH" not in (answer.get("allow") or "")


async def test_publish_from_accepts_a_cidr_holding_the_source(tmp_path: Path) -> None:
    async with FakePbx("udp") as pbx, sip_gateway(tmp_path, sip_table(publish_from=["127.0.0.0/8"])) as gw:
        answer = await Publisher(pbx, sip_address(gw, "udp")).publish(
            ALICE, dialog_info(ALICE, 1, [ringing("p8")])
        )
        assert answer.status == 200


async def _sweep_after_every_lifetime(gw: Client) -> None:
    publisher: PublishServer | None = sip_service(gw).publisher
    assert publisher is not None
    # As if every lifetime granted had passed without a refresh.
    await publisher.sweep(now_ms=int(time.time() * 1000) + 100_000_000)


async def test_an_expired_publication_ends_its_calls_on_a_single_instance(tmp_path: Path) -> None:
    async with FakePbx("udp") as pbx, sip_gateway(tmp_path, sip_table(publish_from=LOCAL)) as gw:
        publisher = Publisher(pbx, sip_address(gw, "udp"))
        token = await gw.login("alice")
        async with gw.stream(token) as stream:
            await publisher.publish(ALICE, dialog_info(ALICE, 1, [ringing("x1")]))
            await _sweep_after_every_lifetime(gw)
            types = [e.json["type"] for e in await stream.take(2)]
        assert types == ["incomingCall", "callEnded"]


async def test_an_expired_publication_ends_its_calls_when_instances_share_redis(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with (
        FakePbx("udp") as pbx,
        sip_gateway(tmp_path, sip_table(publish_from=LOCAL), redis_url=redis_server.url) as gw,
    ):
        publisher = Publisher(pbx, sip_address(gw, "udp"))
        token = await gw.login("alice")
        async with gw.stream(token) as stream:
            await publisher.publish(ALICE, dialog_info(ALICE, 1, [ringing("x2")]))
            await _sweep_after_every_lifetime(gw)
            await publisher.publish(ALICE, dialog_info(ALICE, 1, [ringing("x3")]))
            events = [(e.json["externalCallId"], e.json["type"]) for e in await stream.take(4)]
        # The expiry is shared: whichever instance sweeps ends x2, once.
        assert events == [
            ("sip:x2", "incomingCall"),
            ("sip:x2", "callEnded"),
            ("sip:x2", "callCompleted"),
            ("sip:x3", "incomingCall"),
        ]


async def test_a_terminated_publish_with_a_short_interval_ends_the_call(tmp_path: Path) -> None:
    # As Kamailio's pua_dialoginfo publishes a call's end: Expires: 11, below the minimum.
    async with FakePbx("udp") as pbx, sip_gateway(tmp_path, sip_table(publish_from=LOCAL)) as gw:
        publisher = Publisher(pbx, sip_address(gw, "udp"))
        token = await gw.login("alice")
        async with gw.stream(token) as stream:
            first = await publisher.publish(ALICE, dialog_info(ALICE, 1, [ringing("k1")]), expires=43201)
            last = await publisher.publish(
                ALICE, dialog_info(ALICE, 2, [ended("k1")]), etag=first.get("sip-etag"), expires=11
            )
            assert (last.status, last.get("expires")) == (200, "11")
            types = [e.json["type"] for e in await stream.take(3)]
        assert types == ["incomingCall", "callEnded", "callCompleted"]


async def test_a_short_interval_that_ends_nothing_gets_423_with_the_minimum(tmp_path: Path) -> None:
    async with FakePbx("udp") as pbx, sip_gateway(tmp_path, sip_table(publish_from=LOCAL)) as gw:
        answer = await Publisher(pbx, sip_address(gw, "udp")).publish(
            ALICE, dialog_info(ALICE, 1, [ringing("k2")]), expires=11
        )
        assert (answer.status, answer.get("min-expires")) == (423, "60")


async def test_the_publish_minimum_interval_is_configurable(tmp_path: Path) -> None:
    table = sip_table(publish_from=LOCAL, publish_min_expires=10)
    async with FakePbx("udp") as pbx, sip_gateway(tmp_path, table) as gw:
        publisher = Publisher(pbx, sip_address(gw, "udp"))
        accepted = await publisher.publish(ALICE, dialog_info(ALICE, 1, [ringing("k3")]), expires=11)
        refused = await publisher.publish(ALICE, dialog_info(ALICE, 1, [ringing("k4")]), expires=9)
        assert (accepted.status, accepted.get("expires")) == (200, "11")
        assert (refused.status, refused.get("min-expires")) == (423, "10")


async def test_the_expiry_of_a_short_lived_terminated_publication_adds_no_event(tmp_path: Path) -> None:
    async with FakePbx("udp") as pbx, sip_gateway(tmp_path, sip_table(publish_from=LOCAL)) as gw:
        publisher = Publisher(pbx, sip_address(gw, "udp"))
        token = await gw.login("alice")
        async with gw.stream(token) as stream:
            first = await publisher.publish(ALICE, dialog_info(ALICE, 1, [confirmed("k5")]))
            await publisher.publish(
                ALICE, dialog_info(ALICE, 2, [ended("k5")]), etag=first.get("sip-etag"), expires=11
            )
            await _sweep_after_every_lifetime(gw)
            await publisher.publish(ALICE, dialog_info(ALICE, 1, [ringing("k6")]))
            types = [e.json["type"] for e in await stream.take(5)]
        assert types == ["incomingCall", "callAnswered", "callEnded", "callCompleted", "incomingCall"]


async def test_a_publication_accepted_by_one_instance_is_refreshed_and_removed_through_another(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    table = sip_table(publish_from=LOCAL)
    async with (
        FakePbx("udp") as pbx,
        sip_gateway(tmp_path, table, redis_url=redis_server.url) as one,
        sip_gateway(tmp_path, table, redis_url=redis_server.url) as two,
    ):
        via_one, via_two = Publisher(pbx, sip_address(one, "udp")), Publisher(pbx, sip_address(two, "udp"))
        token = await one.login("alice")
        async with two.stream(token) as stream:
            accepted = await via_one.publish(ALICE, dialog_info(ALICE, 1, [confirmed("s1")]))
            assert accepted.status == 200
            refreshed = await via_two.publish(ALICE, etag=accepted.get("sip-etag"), expires=600)
            assert (refreshed.status, refreshed.get("expires")) == (200, "600")
            # The tag the refresh replaced is retired on every instance (RFC 3903 §6).
            assert (await via_one.publish(ALICE, etag=accepted.get("sip-etag"))).status == 412
            removed = await via_two.publish(ALICE, etag=refreshed.get("sip-etag"), expires=0)
            assert removed.status == 200
            events = [(e.json["externalCallId"], e.json["type"]) for e in await stream.take(4)]
            # Removed: gone for every instance.
            assert (await via_one.publish(ALICE, etag=refreshed.get("sip-etag"))).status == 412
    # Instance two never saw the body, yet its removal ends the call instance one recorded.
    assert events == [
        ("sip:s1", "incomingCall"),
        ("sip:s1", "callAnswered"),
        ("sip:s1", "callEnded"),
        ("sip:s1", "callCompleted"),
    ]
