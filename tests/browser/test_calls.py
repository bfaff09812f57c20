"""Calls fed to the gateway reach the host as the SDK's messages, each once."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import Browser, Route

from tests.support.browser import Message, Simulator, open_simulator, shown
from tests.support.harness import Client, signal

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

CALL_TYPES = {"INCOMING_CALL", "OUTGOING_CALL_STARTED", "CALL_ANSWERED", "CALL_ENDED", "CALL_COMPLETED"}


async def feed(sim: Simulator, *signals: dict[str, object]) -> None:
    for body in signals:
        response = await sim.gateway.ingest(body)
        assert response.status_code == 202, response.text


def app_call_messages(log: list[Message], call_id: str) -> list[Message]:
    return [
        m
        for m in log
        if m["dir"] == "in" and m["type"] in CALL_TYPES and (m["data"] or {}).get("externalCallId") == call_id
    ]


STREAM = "**/api/stream?*"


async def hold_stream(sim: Simulator) -> tuple[list[str], asyncio.Event]:
    """Refuse the page's stream requests (until unrouted); the URLs it tried."""
    blocked: list[str] = []
    tried = asyncio.Event()

    async def block(route: Route) -> None:
        blocked.append(route.request.url)
        tried.set()
        await route.abort()

    await sim.context.route(STREAM, block)
    return blocked, tried


async def engagement_handed_out(sim: Simulator, call_id: str) -> int:
    replies = await sim.to_app("CREATE_ENGAGEMENT_SUCCEEDED")
    mine = [m["data"]["engagementId"] for m in replies if m["data"]["externalCallId"] == call_id]
    assert len(mine) == 1
    engagement: int = mine[0]
    return engagement


async def test_inbound_call_reaches_hubspot_in_sdk_order_with_its_engagement(simulator: Simulator) -> None:
    sim = simulator
    await sim.log_in("alice")
    await sim.logged_in()
    call = "ingest:in-1"

    await feed(sim, signal("in-1", "ringing", remoteName="Carol Caller", at=1_700_000_000_000))
    incoming = (await sim.from_app("INCOMING_CALL"))[0]["data"]
    assert incoming == {
        "externalCallId": call,
        "fromNumber": "+15555550199",
        "toNumber": "+15555550101",
        "callStartTime": 1_700_000_000_000,
        "createEngagement": True,
    }
    engagement = await engagement_handed_out(sim, call)
    # The page reports the engagement to the gateway before the call goes on.
    await sim.widget.get_by_text("Carol Caller").wait_for()

    await feed(sim, signal("in-1", "answered", at=1_700_000_002_000))
    await sim.from_app("CALL_ANSWERED")
    await sim.widget.locator(".call-state", has_text="In call").wait_for()
    shot = await sim.screenshot("browser-inbound-call.png")
    assert shot.stat().st_size > 10_000

    await feed(sim, signal("in-1", "ended", endStatus="COMPLETED", at=1_700_000_062_000))
    completed = (await sim.from_app("CALL_COMPLETED"))[0]["data"]
    ended = (await sim.from_app("CALL_ENDED"))[0]["data"]
    assert ended == {"externalCallId": call, "callEndStatus": "COMPLETED", "engagementId": engagement}
    assert completed["engagementId"] == engagement
    props = completed["engagementProperties"]
    assert props["hs_call_direction"] == "INBOUND"
    assert props["hs_call_duration"] == "60000"
    assert props["hs_call_from_number"] == "+15555550199"
    assert props["hs_call_status"] == "COMPLETED"

    types = [m["type"] for m in app_call_messages(await sim.messages(), call)]
    assert types == ["INCOMING_CALL", "CALL_ANSWERED", "CALL_ENDED", "CALL_COMPLETED"]


async def missed_call(sim: Simulator, call_id: str) -> tuple[Message, int]:
    """Signs in, rings and hangs up; returns CALL_ENDED's payload and the engagement id."""
    await sim.log_in("alice")
    await sim.logged_in()
    await feed(sim, signal(call_id, "ringing"))
    engagement = await engagement_handed_out(sim, f"ingest:{call_id}")
    await feed(sim, signal(call_id, "ended", endStatus="CANCELED"))
    ended = (await sim.from_app("CALL_ENDED"))[0]["data"]
    await sim.from_app("CALL_COMPLETED")
    return ended, engagement


async def test_unanswered_inbound_call_ends_as_the_plain_string_missed(simulator: Simulator) -> None:
    ended, engagement = await missed_call(simulator, "in-2")
    assert ended == {"externalCallId": "ingest:in-2", "callEndStatus": "MISSED", "engagementId": engagement}


async def test_outbound_call_reaches_hubspot_in_sdk_order_with_its_engagement(simulator: Simulator) -> None:
    sim = simulator
    await sim.log_in("alice")
    await sim.logged_in()
    call = "ingest:out-1"
    out = {"direction": "outbound"}
    await feed(sim, signal("out-1", "ringing", **out, **{"from": "+15555550101", "to": "+15555550177"}))
    started = (await sim.from_app("OUTGOING_CALL_STARTED"))[0]["data"]
    assert started["externalCallId"] == call
    assert started["toNumber"] == "+15555550177"
    assert started["createEngagement"] is True
    engagement = await engagement_handed_out(sim, call)
    await sim.widget.get_by_text(shown("+15555550177")).wait_for()

    await feed(
        sim, signal("out-1", "answered", **out), signal("out-1", "ended", endStatus="COMPLETED", **out)
    )
    completed = (await sim.from_app("CALL_COMPLETED"))[0]["data"]
    ended = (await sim.from_app("CALL_ENDED"))[0]["data"]
    assert ended == {"externalCallId": call, "callEndStatus": "COMPLETED", "engagementId": engagement}
    assert completed["engagementId"] == engagement
    assert completed["engagementProperties"]["hs_call_direction"] == "OUTBOUND"
    assert completed["engagementProperties"]["hs_call_to_number"] == "+15555550177"

    types = [m["type"] for m in app_call_messages(await sim.messages(), call)]
    assert types == ["OUTGOING_CALL_STARTED", "CALL_ANSWERED", "CALL_ENDED", "CALL_COMPLETED"]


async def test_stream_cut_mid_call_still_delivers_every_message_once(simulator: Simulator) -> None:
    sim = simulator
    await sim.log_in("alice")
    await sim.logged_in()
    call = "ingest:cut-1"
    await feed(sim, signal("cut-1", "ringing"))
    await engagement_handed_out(sim, call)
    await feed(sim, signal("cut-1", "answered"))
    await sim.from_app("CALL_ANSWERED")

    # Cut the stream from the server side, and keep the page from
    # reconnecting until the call has ended, so the rest comes from history.
    blocked, tried = await hold_stream(sim)
    sim.gateway.gateway.broker.close_streams("test")
    await sim.widget.locator("#connection[data-state=reconnecting]").wait_for()
    await asyncio.wait_for(tried.wait(), 10)
    await feed(sim, signal("cut-1", "ended", endStatus="COMPLETED"))
    await sim.context.unroute(STREAM)
    # The page did try to come back, with a fresh ticket and where it left off.
    assert blocked
    assert all("ticket=" in url and "lastEventId=" in url for url in blocked)

    await sim.from_app("CALL_COMPLETED")
    await sim.widget.locator("#connection[data-state=open]").wait_for()
    # A second cut after the call: reconnecting replays nothing twice.
    sim.gateway.gateway.broker.close_streams("test")
    await feed(sim, signal("cut-2", "ringing"))
    await sim.from_app("INCOMING_CALL", 2)

    types = [m["type"] for m in app_call_messages(await sim.messages(), call)]
    assert types == ["INCOMING_CALL", "CALL_ANSWERED", "CALL_ENDED", "CALL_COMPLETED"]


async def test_stream_cut_before_any_event_still_delivers_the_call_that_rang_meanwhile(
    simulator: Simulator,
) -> None:
    sim = simulator
    await sim.log_in("alice")
    await sim.logged_in()
    await sim.widget.locator("#connection[data-state=open]").wait_for()
    blocked, tried = await hold_stream(sim)
    sim.gateway.gateway.broker.close_streams("test")
    await asyncio.wait_for(tried.wait(), 10)
    await feed(sim, signal("early-1", "ringing"))
    await sim.context.unroute(STREAM)
    # The stream's hello gave the page a place to resume from.
    assert all("lastEventId=" in url for url in blocked)
    await sim.from_app("INCOMING_CALL")
    types = [m["type"] for m in app_call_messages(await sim.messages(), "ingest:early-1")]
    assert types == ["INCOMING_CALL"]


# What a browser that refuses storage to third-party frames does.
NO_STORAGE = """
Object.defineProperty(window, "sessionStorage", {
  get() { throw new DOMException("storage is blocked here", "SecurityError"); },
});
"""


async def test_calls_flow_when_the_browser_refuses_the_widget_storage(
    browser: Browser, web_gateway: Client
) -> None:
    async with open_simulator(browser, web_gateway, init_script=NO_STORAGE) as sim:
        ended, engagement = await missed_call(sim, "nostore-1")
        assert ended["engagementId"] == engagement
