"""Gateways on a Sentinel-managed primary: a failover is recovered from without help."""

from __future__ import annotations

from pathlib import Path

from tests.support.harness import make_settings, running_gateway, signal
from tests.support.redis_topologies import SentinelSetup
from tests.support.resuming import Page, pages, send


async def test_calls_go_on_across_instances_through_a_primary_failover(
    tmp_path: Path, sentinel_setup: SentinelSetup
) -> None:
    settings = make_settings(tmp_path, redis_url=sentinel_setup.url)
    async with running_gateway(settings) as one, running_gateway(settings) as two:
        page = Page(two, await one.login("alice"))
        async with pages(page):
            await send(one, signal("f1", "ringing"))
            await send(one, signal("f1", "answered"))
            await page.until(lambda p: len(p.events) == 2)
            first_primary = sentinel_setup.primary_port()
            sentinel_setup.primary.kill()  # SIGKILL; the sentinels promote the replica

            await send(two, signal("f1", "ended"))
            await send(one, signal("f2", "ringing"))
            await page.until_call("ingest:f2")
        new_primary = sentinel_setup.primary_port()
    calls = page.calls()
    assert new_primary != first_primary
    assert [e["type"] for e in calls["ingest:f1"]] == [
        "incomingCall",
        "callAnswered",
        "callEnded",
        "callCompleted",
    ]
    assert calls["ingest:f1"][2]["payload"]["callEndStatus"] == "COMPLETED"
    assert [e["type"] for e in calls["ingest:f2"]] == ["incomingCall"]
