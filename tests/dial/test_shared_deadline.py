"""Two gateways on one redis-server: a dial whose placing gateway stops still ends at its deadline.

The gateways are the real ones (``build_gateway`` on Redis, served over
HTTP); the route is a telephony that accepts the call and never reports
again, so only the deadline can end it.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from gateway.dial.cpaas import RingsUserNumber
from gateway.dial.routes import DialPlan, Placed
from tests.support.harness import Client, make_settings, running_gateway
from tests.support.servers import RedisServer


class Silent(RingsUserNumber):
    """A route whose telephony takes the call and never says anything more."""

    name = "silent"
    match_seconds = 0.0
    ring_seconds = 0.5

    async def place(self, plan: DialPlan) -> Placed:
        return Placed(reference="S-1")


def offer_silent_route(gw: Client) -> None:
    gw.gateway.dialling.routes.register(Silent())
    # The test's deadline is the route's ring time alone.
    gw.gateway.dialling.watchdog.margin_seconds = 0.0


async def test_a_dial_whose_gateway_stopped_is_ended_canceled_by_the_other_at_its_deadline(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    extra = {"dial": {"100": {"route": "silent"}}}
    settings = make_settings(tmp_path, redis_url=redis_server.url, extra=extra)
    async with running_gateway(settings) as survivor:
        offer_silent_route(survivor)
        token = await survivor.login("alice")
        async with survivor.stream(token) as stream:
            async with contextlib.AsyncExitStack() as placing_one:
                placing = await placing_one.enter_async_context(running_gateway(settings))
                offer_silent_route(placing)
                answer = await placing.http.post(
                    "/api/dial",
                    json={"number": "+12125550100"},
                    headers={"authorization": f"Bearer {await placing.login('alice')}"},
                )
                assert answer.status_code == 202, answer.text
            # The placing gateway is gone, well before the deadline.
            events = await stream.take(3)
    types = [e.json["type"] for e in events]
    assert types == ["outgoingCall", "callEnded", "callCompleted"]
    assert {e.json["externalCallId"] for e in events} == {answer.json()["externalCallId"]}
    assert events[1].json["payload"]["callEndStatus"] == "CANCELED"
