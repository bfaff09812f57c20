"""An instance's share of the AORs when Redis goes away and comes back (docs/scaling.md)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from tests.support.fakepbx import FakePbx
from tests.support.harness import Client
from tests.support.servers import RedisServer
from tests.support.sipkit import sip_gateway, sip_table

FAST = {"owner_heartbeat_seconds": 0.1, "owner_ttl_seconds": 0.5}
UNSHARED = "the broker cannot be reached to share the AORs"


async def readiness(gw: Client, wanted: Callable[[int, str], bool], seconds: float = 15) -> str:
    """Until /readyz's status and SIP detail are as wanted (only observable by asking); the detail."""
    for _ in range(int(seconds * 20)):
        answer = await gw.http.get("/readyz")
        detail: str = answer.json()["checks"]["sip"]["detail"]
        if wanted(answer.status_code, detail):
            return detail
        await asyncio.sleep(0.05)
    raise AssertionError(f"/readyz never got there; last: {answer.status_code} {detail}")


async def test_the_aors_held_stay_subscribed_while_redis_is_away_and_after_it_restarted_empty(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with (
        FakePbx("udp") as pbx,
        sip_gateway(tmp_path, sip_table(pbx, **FAST), redis_url=redis_server.url) as gw,
    ):
        await pbx.subscribed("1001")
        await pbx.subscribed("1002")
        await readiness(gw, lambda status, _: status == 200)
        redis_server.stop()
        away = await readiness(gw, lambda status, detail: status == 503 and UNSHARED in detail)
        redis_server.start()  # without persistence: the leases are gone
        await readiness(gw, lambda status, _: status == 200)
        accepted = sorted((a.user, a.expires) for a in pbx.accepted)
    assert accepted == [("1001", 600), ("1002", 600)]  # the two first dialogs: none ended, none added
    assert away.startswith("2/2 dialog subscriptions active")
