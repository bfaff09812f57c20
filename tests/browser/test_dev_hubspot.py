"""``./dev run`` in a browser: the simulator's widget engagement is made in the HubSpot stand-in.

The simulator plays HubSpot's page: when the widget reports an incoming
call, it has the stand-in make the engagement (as HubSpot makes it in its
CRM), the page reports that id to the gateway, and after the call the
gateway updates that engagement; the stand-in's page shows the call as
the widget's, completed by the gateway, and no second engagement.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from playwright.async_api import Browser

from gateway.standin.dev import DEMO_PORTAL
from tests.support.browser import open_simulator
from tests.support.harness import signal
from tests.support.hubspot import dev_gateway, page_once_logged

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


async def test_a_call_the_simulators_widget_logged_shows_as_the_widgets_in_the_stand_in(
    browser: Browser, tmp_path: Path
) -> None:
    async with (
        dev_gateway(tmp_path) as (gateway, clock),
        open_simulator(browser, gateway, portal_id=DEMO_PORTAL) as sim,
    ):
        await sim.log_in("alice")
        await sim.logged_in()
        assert (await gateway.ingest({"signals": [signal("w1", "ringing")]})).status_code == 202
        [made] = await sim.to_app("CREATE_ENGAGEMENT_SUCCEEDED")
        engagement = made["data"]["engagementId"]
        # The page reports it to the gateway; only the call's state shows when.
        token = await gateway.login("alice")
        deadline = time.monotonic() + 10
        while (
            await gateway.http.get("/api/calls/ingest:w1", headers={"authorization": f"Bearer {token}"})
        ).json()["engagementId"] != engagement:
            assert time.monotonic() < deadline, "the page never reported the engagement"
            await asyncio.sleep(0.05)
        assert (await gateway.ingest({"signals": [signal("w1", "ended")]})).status_code == 202
        page = await page_once_logged(gateway, clock, "updated by the gateway")
    assert f"call {engagement} (portal {DEMO_PORTAL})" in page
    assert page.count("<section>") == 1
    assert "logged by: widget (created by HubSpot for the calling widget), updated by the gateway" in page
