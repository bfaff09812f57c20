"""The simulator hosts the calling page as HubSpot does; the user signs in."""

from __future__ import annotations

import pytest

from tests.browser import ALICE_HUBSPOT_ID, ALICE_PORTAL, Simulator
from tests.harness import signal

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
    await simulator.widget.get_by_text(f"HubSpot portal {ALICE_PORTAL}").wait_for()


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
    await simulator.log_in("alice")
    await simulator.logged_in()
    await simulator.page.get_by_label("Number").fill("(555) 555-0142")
    await simulator.page.get_by_role("button", name="DIAL_NUMBER").click()
    dial = simulator.widget.locator("#dial")
    await dial.get_by_text("(555) 555-0142").wait_for()
    await dial.get_by_text("click-to-dial is not available yet").wait_for()


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
