"""The simulator hosts the calling page as HubSpot does; the user signs in."""

from __future__ import annotations

import pytest

from tests.browser import ALICE_HUBSPOT_ID, ALICE_PORTAL, Simulator

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


async def test_sync_handshake_tells_the_app_who_is_looking(simulator: Simulator) -> None:
    sync = await simulator.to_app("SYNC")
    assert sync[0]["data"] is None
    ack = await simulator.from_app("SYNC_ACK")
    initialized = await simulator.from_app("INITIALIZED")
    assert initialized[0]["data"] == {"isLoggedIn": False}
    assert ack[0]["type"] == "SYNC_ACK"
    await simulator.widget.get_by_label("Login").wait_for()
    assert ALICE_PORTAL and ALICE_HUBSPOT_ID


async def test_user_logs_in_and_is_reported_logged_in_and_available(simulator: Simulator) -> None:
    await simulator.log_in("alice")
    await simulator.logged_in()
    await simulator.from_app("USER_AVAILABLE")
    await simulator.widget.get_by_text("Alice Example").wait_for()
