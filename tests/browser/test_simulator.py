"""The simulator hosts the calling page as HubSpot does; the user signs in."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from playwright.async_api import Browser

from gateway.sources import demo
from tests.support.browser import ALICE_HUBSPOT_ID, ALICE_PORTAL, Simulator, open_simulator
from tests.support.harness import Client, make_settings, running_gateway, signal

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


async def test_sync_handshake_tells_the_app_who_is_looking(simulator: Simulator) -> None:
    sync = (await simulator.to_app("SYNC"))[0]["data"]
    assert (sync["portalId"], sync["userId"]) == (ALICE_PORTAL, ALICE_HUBSPOT_ID)
    ack = (await simulator.from_app("SYNC_ACK"))[0]["data"]
    # The SDK in the page answers with its version and its own origin.
    assert ack["version"]
    assert ack["iFrameUrl"] == simulator.gateway.base_url
    initialized = await simulator.from_app("INITIALIZED")
    assert initialized[0]["data"] == {"isLoggedIn": False}
    # The page read onReady's portal id and asks for a login.
    await simulator.widget.locator("#login-context", has_text=f"HubSpot portal {ALICE_PORTAL}").wait_for()


async def test_user_logs_in_and_is_reported_logged_in_and_available(simulator: Simulator) -> None:
    await simulator.log_in("alice")
    await simulator.logged_in()
    await simulator.from_app("USER_AVAILABLE")
    await simulator.widget.get_by_text("Alice Example").wait_for()


async def test_wrong_password_is_refused_and_nothing_is_reported_to_hubspot(simulator: Simulator) -> None:
    await simulator.log_in("alice", "not-the-password")
    alert = simulator.widget.get_by_role("alert")
    await alert.get_by_text("wrong login or password").wait_for()
    # The form is usable again, and HubSpot never heard of a login.
    await simulator.widget.get_by_role("button", name="Sign in").wait_for(state="visible")
    assert await simulator.widget.get_by_role("button", name="Sign in").is_enabled()
    assert not [m for m in await simulator.messages() if m["type"] == "LOGGED_IN"]


async def test_login_from_another_hubspot_user_is_refused(simulator: Simulator) -> None:
    # HubSpot says bob (502) is looking; alice's password must not open her
    # calls there.
    await simulator.page.get_by_label("HubSpot user id").fill("502")
    await simulator.page.get_by_role("button", name="Reload iframe").click()
    await simulator.from_app("SYNC_ACK", 2)
    await simulator.log_in("alice")
    await simulator.widget.get_by_role("alert").get_by_text("not the gateway user").wait_for()
    assert not [m for m in await simulator.messages() if m["type"] == "LOGGED_IN"]


async def test_dial_request_shows_the_number_and_the_gateways_answer(simulator: Simulator) -> None:
    # No [dial] route for the portal on this gateway: the refusal is shown.
    await simulator.log_in("alice")
    await simulator.logged_in()
    await simulator.dial("(555) 555-0142")
    dial = simulator.widget.locator("#dial")
    await dial.get_by_text("(555) 555-0142").wait_for()
    await dial.get_by_text("no dialling route is configured for HubSpot portal 100").wait_for()


async def test_reloaded_widget_keeps_its_session_and_replays_no_call(simulator: Simulator) -> None:
    sim = simulator
    await sim.log_in("alice")
    await sim.logged_in()
    response = await sim.gateway.ingest(signal("r-1", "ringing"))
    assert response.status_code == 202
    await sim.from_app("INCOMING_CALL")

    await sim.page.get_by_role("button", name="Reload iframe").click()
    await sim.from_app("SYNC_ACK", 2)
    init = await sim.from_app("INITIALIZED", 2)
    assert init[1]["data"] == {"isLoggedIn": True}
    await sim.widget.locator("#connection[data-state=open]").wait_for()
    await sim.gateway.ingest(signal("r-1", "answered"))
    await sim.from_app("CALL_ANSWERED")
    assert len([m for m in await sim.messages() if m["type"] == "INCOMING_CALL"]) == 1


async def test_dev_mode_demo_button_plays_a_full_call_through_the_widget(
    browser: Browser, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo, "DEMO_TIMING", {"ring": 0.2, "talk": 0.2})
    async with (
        running_gateway(make_settings(tmp_path, dev=True)) as client,
        open_simulator(browser, client) as sim,
    ):
        await sim.log_in("alice")
        await sim.logged_in()
        await sim.page.get_by_role("button", name="Demo inbound call").click()
        completed = (await sim.from_app("CALL_COMPLETED"))[0]["data"]
        call = completed["externalCallId"]
        assert call.startswith("demo:")
        types = [m["type"] for m in await sim.call_messages(call) if m["dir"] == "in"]
        assert types == ["INCOMING_CALL", "CALL_ANSWERED", "CALL_ENDED", "CALL_COMPLETED"]
        await sim.widget.locator(".call-state", has_text="Ended").wait_for()


async def test_widget_fits_a_narrow_iframe_during_a_call(simulator: Simulator) -> None:
    sim = simulator
    await sim.log_in("alice")
    await sim.logged_in()
    await sim.gateway.ingest(signal("narrow-1", "ringing", remoteName="A Caller With A Rather Long Name"))
    await sim.widget.locator(".call-state", has_text="Ringing").wait_for()
    await sim.page.evaluate("document.querySelector('#calling-widget iframe').setAttribute('width', '300px')")
    frame = sim.widget_frame()
    await frame.wait_for_function("() => window.innerWidth === 300")
    overflow = await frame.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow == 0
    await sim.screenshot("browser-narrow-widget.png")


async def test_session_is_refreshed_before_it_expires_and_the_stream_outlives_the_first_token(
    browser: Browser, tmp_path: Path
) -> None:
    ttl = 10
    async with (
        running_gateway(make_settings(tmp_path, token_ttl_seconds=ttl)) as client,
        open_simulator(browser, client) as sim,
    ):
        await sim.log_in("alice")
        logged_in_at = time.monotonic()
        await sim.logged_in()
        await client.ingest(signal("late-1", "ringing"))
        await sim.from_app("INCOMING_CALL")
        async with sim.page.expect_response("**/api/session/refresh", timeout=ttl * 1000) as refreshed:
            pass
        assert (await refreshed.value).status == 200
        # This test is about time passing: outlive the first token, then make
        # the page open a new stream, which needs a ticket from a valid token.
        await asyncio.sleep(max(0.0, ttl + 1 - (time.monotonic() - logged_in_at)))
        client.gateway.broker.close_streams("test")
        await client.ingest(signal("late-1", "answered"))
        await sim.from_app("CALL_ANSWERED")
        assert not [m for m in await sim.messages() if m["type"] == "LOGGED_OUT"]


async def test_end_call_from_hubspot_tells_the_user_to_hang_up_on_the_phone(simulator: Simulator) -> None:
    await simulator.log_in("alice")
    await simulator.logged_in()
    await simulator.page.get_by_role("button", name="END_CALL").click()
    await simulator.widget.locator("#notices").get_by_text("Hang up on your phone").wait_for()


async def test_page_opened_outside_hubspot_points_to_the_simulator(
    browser: Browser, web_gateway: Client
) -> None:
    context = await browser.new_context()
    try:
        page = await context.new_page()
        await page.goto(web_gateway.base_url + "/")
        link = page.get_by_role("link", name="local HubSpot simulator")
        await link.wait_for(timeout=10_000)
        await link.click()
        await page.wait_for_url("**/simulator")
    finally:
        await context.close()
