"""The widget served cross-site, as HubSpot embeds it, with Chromium's default
third-party storage rules (and once with storage granted): sign-in survives a
reload, a call that ends while the page reloads still ends in HubSpot, and
no event reaches HubSpot twice, whatever the tabs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Route

from tests.support.browser import Message, Simulator, open_simulator, shown
from tests.support.harness import Client, signal

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

CALL_TYPES = ("INCOMING_CALL", "CALL_ANSWERED", "CALL_ENDED", "CALL_COMPLETED")


@pytest_asyncio.fixture(loop_scope="session")
async def sim(browser: Browser, web_gateway: Client) -> AsyncIterator[Simulator]:
    async with open_simulator(browser, web_gateway, cross_site=True) as sim:
        yield sim


async def feed(sim: Simulator, *signals: dict[str, object]) -> None:
    for body in signals:
        response = await sim.gateway.ingest(body)
        assert response.status_code == 202, response.text


def sent(log: list[Message], call_id: str) -> list[str]:
    return [
        m["type"]
        for m in log
        if m["dir"] == "in" and m["type"] in CALL_TYPES and (m["data"] or {}).get("externalCallId") == call_id
    ]


async def answered_call(sim: Simulator, call_id: str) -> int:
    """Signs in, rings and answers a call; returns the engagement HubSpot made."""
    await sim.log_in("alice")
    await sim.logged_in()
    await feed(sim, signal(call_id, "ringing", remoteName="Carol Caller"))
    replies = await sim.to_app("CREATE_ENGAGEMENT_SUCCEEDED")
    await feed(sim, signal(call_id, "answered"))
    await sim.from_app("CALL_ANSWERED")
    await sim.widget.locator(".call-state", has_text="In call").wait_for()
    engagement: int = replies[0]["data"]["engagementId"]
    return engagement


async def reload_while_the_call_ends(sim: Simulator, call_id: str) -> None:
    """Reloads the widget and ends the call before the new page reaches the stream."""
    stream_tried = asyncio.Event()

    async def hold(route: Route) -> None:
        stream_tried.set()
        await route.abort()

    await sim.context.route("**/api/stream?*", hold)
    await sim.page.get_by_role("button", name="Reload iframe").click()
    await sim.from_app("SYNC_ACK", 2)
    await asyncio.wait_for(stream_tried.wait(), 10)
    await feed(sim, signal(call_id, "ended", endStatus="COMPLETED"))
    await sim.context.unroute("**/api/stream?*")


async def test_the_cross_site_widget_is_refused_storage_by_default(sim: Simulator) -> None:
    frame = sim.widget_frame()
    assert frame.url.startswith("http://localhost:")
    assert sim.page.url.startswith("http://127.0.0.1:")
    assert not await sim.storage_granted()


async def check_reload_mid_call(sim: Simulator, storage: str) -> None:
    call = "ingest:reload-1"
    engagement = await answered_call(sim, "reload-1")
    await sim.screenshot(f"browser-cross-site-{storage}-mid-call.png")

    await reload_while_the_call_ends(sim, "reload-1")
    # Signed in still: HubSpot hears isLoggedIn, and no sign-in form shows.
    assert (await sim.from_app("INITIALIZED", 2))[1]["data"] == {"isLoggedIn": True}
    ended = (await sim.from_app("CALL_ENDED"))[0]["data"]
    completed = (await sim.from_app("CALL_COMPLETED"))[0]["data"]
    assert ended == {"externalCallId": call, "callEndStatus": "COMPLETED", "engagementId": engagement}
    assert completed["engagementId"] == engagement
    await sim.widget.locator(".call-state", has_text="Ended").wait_for()
    assert not await sim.widget.locator("#login").is_visible()
    # Something later, so that anything sent twice would be in by now.
    await feed(sim, signal("after-1", "ringing"))
    await sim.from_app("INCOMING_CALL", 2)
    assert sent(await sim.messages(), call) == list(CALL_TYPES)
    assert len(await sim.from_app("LOGGED_IN")) == 1
    await sim.screenshot(f"browser-cross-site-{storage}-after-reload.png")


async def test_reload_mid_call_cross_site_keeps_the_sign_in_and_ends_the_call_in_hubspot_once(
    sim: Simulator,
) -> None:
    await check_reload_mid_call(sim, "blocked")


async def test_reload_mid_call_cross_site_with_storage_granted_does_the_same(
    browser_allowing_storage: Browser, web_gateway: Client
) -> None:
    async with open_simulator(browser_allowing_storage, web_gateway, cross_site=True) as sim:
        assert await sim.storage_granted()
        await check_reload_mid_call(sim, "allowed")


async def test_a_second_tab_signs_in_by_itself_and_sends_nothing_twice(sim: Simulator) -> None:
    first = "ingest:tabs-1"
    await answered_call(sim, "tabs-1")
    tab = await sim.another_tab()
    # The second tab's widget found the session (the partitioned cookie).
    await tab.widget.locator("#connection[data-state=open]").wait_for()
    assert (await tab.from_app("INITIALIZED"))[0]["data"] == {"isLoggedIn": True}

    await feed(sim, signal("tabs-1", "ended", endStatus="COMPLETED"))
    await sim.from_app("CALL_COMPLETED")
    await feed(sim, signal("tabs-2", "ringing", **{"from": "+15555550177"}))
    await tab.widget.get_by_text(shown("+15555550177")).wait_for()
    await sim.widget.get_by_text(shown("+15555550177")).wait_for()
    await feed(sim, signal("tabs-2", "ended", endStatus="CANCELED"))
    await tab.widget.locator(".call-state", has_text="Ended").wait_for()
    await sim.widget.locator(".call-state", has_text="Ended").wait_for()
    await sim.screenshot("browser-cross-site-first-tab.png")
    await tab.screenshot("browser-cross-site-second-tab.png")

    one, two = await sim.messages(), await tab.messages()
    # The first call's end went to the tab that started it, and only there.
    assert sent(one, first) == list(CALL_TYPES)
    assert sent(two, first) == []
    # The second call reached HubSpot once, through one tab or the other.
    second = sorted(sent(one, "ingest:tabs-2") + sent(two, "ingest:tabs-2"))
    assert second == sorted(["INCOMING_CALL", "CALL_ENDED", "CALL_COMPLETED"])
    assert not (sent(one, "ingest:tabs-2") and sent(two, "ingest:tabs-2"))


async def test_signing_out_cross_site_is_not_undone_by_a_reload(sim: Simulator) -> None:
    await sim.log_in("alice")
    await sim.logged_in()
    await sim.widget.get_by_role("button", name="Sign out").click()
    await sim.from_app("LOGGED_OUT")
    await sim.page.get_by_role("button", name="Reload iframe").click()
    assert (await sim.from_app("INITIALIZED", 2))[1]["data"] == {"isLoggedIn": False}
    await sim.widget.locator("#login").wait_for()


async def test_failed_engagement_cross_site_shows_hubspots_text(sim: Simulator) -> None:
    await sim.page.locator("#auto-engagement").uncheck()
    await sim.log_in("alice")
    await sim.logged_in()
    await feed(sim, signal("fail-1", "ringing"))
    await sim.from_app("INCOMING_CALL")
    await sim.page.get_by_role("button", name="CREATE_ENGAGEMENT_FAILED").click()
    notice = sim.widget.locator("#notices li")
    await notice.get_by_text("The simulator refused to log this call").wait_for()
    assert "[object Object]" not in await notice.inner_text()
    await sim.screenshot("browser-cross-site-engagement-failed.png")
