"""Exactly one surface talks to the SDK for calls: of several tabs the oldest,
of HubSpot's calling window and its remote the window. The others show the
same calls and send nothing; when the leader goes, another carries on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser

from tests.support.browser import Message, Simulator, open_simulator
from tests.support.harness import Client, make_settings, running_gateway, signal

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

CALL_TYPES = ("INCOMING_CALL", "CALL_ANSWERED", "CALL_ENDED", "CALL_COMPLETED")
REMOTE = "&iframeLocation=remote&usesCallingWindow=1"
WINDOW = "&iframeLocation=window&usesCallingWindow=1"


@pytest_asyncio.fixture(loop_scope="session")
async def sim(browser: Browser, web_gateway: Client) -> AsyncIterator[Simulator]:
    async with open_simulator(browser, web_gateway, cross_site=True) as sim:
        yield sim


async def feed(gateway: Client, *signals: dict[str, object]) -> None:
    for body in signals:
        response = await gateway.ingest(body)
        assert response.status_code == 202, response.text


async def talk_and_end(sim: Simulator, call_id: str) -> None:
    """A call answered and ended, as the leader passed it on."""
    await feed(sim.gateway, signal(call_id, "ringing"), signal(call_id, "answered"))
    await sim.from_app("CALL_ANSWERED")
    await feed(sim.gateway, signal(call_id, "ended", endStatus="COMPLETED"))
    await sim.from_app("CALL_ENDED")


def sent(log: list[Message], call_id: str) -> list[str]:
    return [
        m["type"]
        for m in log
        if m["dir"] == "in" and m["type"] in CALL_TYPES and (m["data"] or {}).get("externalCallId") == call_id
    ]


async def test_when_the_leading_tab_closes_the_other_ends_the_call_in_hubspot(sim: Simulator) -> None:
    call = "ingest:lead-1"
    await sim.page.locator("#match-kind").select_option("NONE")
    await sim.log_in("alice")
    await sim.logged_in()
    tab = await sim.another_tab()
    await tab.widget.locator("#connection[data-state=open]").wait_for()
    await feed(sim.gateway, signal("lead-1", "ringing", remoteName="Handed Over"))
    engagement = (await sim.to_app("CREATE_ENGAGEMENT_SUCCEEDED"))[0]["data"]["engagementId"]
    await feed(sim.gateway, signal("lead-1", "answered"))
    await sim.from_app("CALL_ANSWERED")
    # The second tab shows the call, says who logs it, and sent nothing.
    card = await tab.card("Handed Over")
    await card.get_by_text("In call").wait_for()
    await card.get_by_text("Another HubSpot window logs this call").wait_for()
    await tab.screenshot("browser-surfaces-follower.png")
    assert sent(await tab.messages(), call) == []

    await sim.page.close()
    await feed(sim.gateway, signal("lead-1", "ended", endStatus="COMPLETED"))
    ended = (await tab.from_app("CALL_ENDED"))[0]["data"]
    await tab.from_app("CALL_COMPLETED")
    assert ended["engagementId"] == engagement
    assert sent(await tab.messages(), call) == ["CALL_ENDED", "CALL_COMPLETED"]


async def test_only_the_calling_window_logs_calls_and_the_remote_shows_them(
    browser: Browser, web_gateway: Client
) -> None:
    call = "ingest:window-1"
    # The remote opens first: being older does not make it lead.
    async with open_simulator(browser, web_gateway, query=REMOTE) as remote:
        await remote.log_in("alice")
        await remote.logged_in()
        window = await remote.another_tab(remote.page.url.replace(REMOTE, WINDOW))
        await window.widget.locator("#connection[data-state=open]").wait_for()
        await feed(web_gateway, signal("window-1", "ringing", remoteName="Window Caller"))
        await window.from_app("INCOMING_CALL")
        await feed(web_gateway, signal("window-1", "ended", endStatus="CANCELED"))
        await window.from_app("CALL_COMPLETED")
        await remote.widget.locator(".call-state", has_text="Ended").wait_for()
        assert sent(await window.messages(), call) == ["INCOMING_CALL", "CALL_ENDED", "CALL_COMPLETED"]
        assert sent(await remote.messages(), call) == []
        await remote.screenshot("browser-surfaces-remote.png")


async def test_the_other_tabs_show_the_caller_hubspot_matched_for_the_leader(sim: Simulator) -> None:
    await sim.page.locator("#match-number").fill("+15555550199")
    await sim.page.locator("#match-name").fill("Matched Once")
    await sim.log_in("alice")
    await sim.logged_in()
    tab = await sim.another_tab()
    await tab.widget.locator("#connection[data-state=open]").wait_for()
    await feed(sim.gateway, signal("shared-1", "ringing"))
    await sim.card("Matched Once")
    card = await tab.card("Matched Once")
    await card.get_by_text("Another HubSpot window logs this call").wait_for()
    # Only the leader asks HubSpot to open records.
    assert not await card.get_by_role("button", name="Open record").is_visible()
    assert len(await sim.to_app("CALLER_ID_MATCH_SUCCEEDED")) == 1
    assert [m for m in await tab.messages() if m["type"] == "CALLER_ID_MATCH_SUCCEEDED"] == []


async def test_a_wrap_up_typed_in_another_tab_is_sent_by_the_leader(browser: Browser, tmp_path: Path) -> None:
    call = "ingest:elsewhere-1"
    async with (
        running_gateway(make_settings(tmp_path, wrap_up_seconds=60)) as gateway,
        open_simulator(browser, gateway, cross_site=True) as sim,
    ):
        await sim.log_in("alice")
        await sim.logged_in()
        tab = await sim.another_tab()
        await tab.widget.locator("#connection[data-state=open]").wait_for()
        await talk_and_end(sim, "elsewhere-1")
        card = await tab.card("Wrap-up")
        await card.get_by_label("Notes").fill("Typed in the other tab")
        await card.get_by_role("button", name="Save and log").click()
        completed = (await sim.from_app("CALL_COMPLETED"))[0]["data"]
        assert completed["engagementProperties"]["hs_call_body"] == "Typed in the other tab"
        await tab.widget.locator("#call-list .call-state", has_text="Ended").wait_for()
        assert sent(await tab.messages(), call) == []


async def test_a_tab_opened_during_a_wrap_up_offers_it_and_the_leader_sends_it(
    browser: Browser, tmp_path: Path
) -> None:
    call = "ingest:later-1"
    async with (
        running_gateway(make_settings(tmp_path, wrap_up_seconds=60)) as gateway,
        open_simulator(browser, gateway, cross_site=True) as sim,
    ):
        await sim.log_in("alice")
        await sim.logged_in()
        await talk_and_end(sim, "later-1")
        await sim.card("Wrap-up")
        tab = await sim.another_tab()
        card = await tab.card("Wrap-up")
        await card.get_by_label("Notes").fill("Typed in the tab opened later")
        await card.get_by_role("button", name="Save and log").click()
        completed = (await sim.from_app("CALL_COMPLETED"))[0]["data"]
        assert completed["engagementProperties"]["hs_call_body"] == "Typed in the tab opened later"
        await tab.widget.locator("#call-list .call-state", has_text="Ended").wait_for()
        assert sent(await tab.messages(), call) == []
