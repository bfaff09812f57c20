"""``GET /api/wrap-up`` offers the portal's own call outcomes, read through the gateway's HubSpot connection.

The gateway is served on loopback with ``[hubspot]`` pointing at the HubSpot
stand-in (``gateway/standin/hubspot.py``, which follows HubSpot's "Read a
property" reference for ``hs_call_disposition``) on another loopback port;
the portal is connected through the install flow, as an admin does.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.http.wrapup import HUBSPOT_DEFAULT_DISPOSITIONS
from gateway.standin.hubspot import HubSpotStandIn
from tests.support.harness import Client, make_settings, running_gateway
from tests.support.hubspot import PORTAL, serving, table

PROPERTY = "/crm/v3/properties/calls/hs_call_disposition"
DEMO_BOOKED = "3c6f1a52-0c2e-4f7a-9d55-6a0f2b9f1e01"
NOT_INTERESTED = "8e0b7d1c-5a3f-4b61-a0e2-2f4c9d7b6a02"
RETIRED = "c1d2e3f4-0000-4000-8000-000000000003"


@pytest.fixture
async def hubspot() -> AsyncIterator[tuple[HubSpotStandIn, str]]:
    standin = HubSpotStandIn(default_portal=PORTAL, slow_seconds=1.0)
    standin.portal(PORTAL).dispositions = [
        (DEMO_BOOKED, "Demo booked", False),
        (RETIRED, "Old outcome", True),
        (NOT_INTERESTED, "Not interested", False),
    ]
    async with serving(standin) as url:
        yield standin, url


@contextlib.asynccontextmanager
async def gateway(
    hubspot: tuple[HubSpotStandIn, str], tmp_path: Path, **settings: Any
) -> AsyncIterator[Client]:
    standin, url = hubspot
    extra = {"outbox_file": str(tmp_path / "outbox.sqlite3"), "timeout_seconds": 0.5}
    made = make_settings(tmp_path, extra={"hubspot": table(standin, url, tmp_path, **extra)}, **settings)
    async with running_gateway(made) as client:
        yield client


async def install(client: Client) -> None:
    """What the admin's browser does: the install link, HubSpot's approval, the callback."""
    async with httpx.AsyncClient(follow_redirects=True, timeout=10) as browser:
        page = await browser.get(client.base_url + "/hubspot/install")
    assert page.status_code == 200, page.text


async def offered(client: Client) -> dict[str, Any]:
    token = await client.login("alice")
    answer = await client.http.get("/api/wrap-up", headers={"authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def test_a_connected_portal_offers_its_own_outcomes_without_the_hidden_ones(
    hubspot: tuple[HubSpotStandIn, str], tmp_path: Path
) -> None:
    async with gateway(hubspot, tmp_path) as client:
        await install(client)
        answer = await offered(client)
    assert answer["source"] == "portal"
    assert answer["dispositions"] == [
        {"id": DEMO_BOOKED, "label": "Demo booked"},
        {"id": NOT_INTERESTED, "label": "Not interested"},
    ]


async def test_the_portal_is_asked_once_for_many_wrap_ups(
    hubspot: tuple[HubSpotStandIn, str], tmp_path: Path
) -> None:
    standin, _ = hubspot
    async with gateway(hubspot, tmp_path) as client:
        await install(client)
        for _ in range(3):
            await offered(client)
    assert standin.requests.count(("GET", PROPERTY)) == 1


async def test_a_portal_not_connected_gets_the_configured_outcomes(
    hubspot: tuple[HubSpotStandIn, str], tmp_path: Path
) -> None:
    standin, _ = hubspot
    own = ((DEMO_BOOKED, "Demo booked (configured)"),)
    async with gateway(hubspot, tmp_path, call_dispositions=own) as client:
        answer = await offered(client)
    assert answer["source"] == "settings"
    assert answer["dispositions"] == [{"id": DEMO_BOOKED, "label": "Demo booked (configured)"}]
    assert ("GET", PROPERTY) not in standin.requests


@pytest.mark.parametrize("status", [500, 429, 401, "slow"])
async def test_hubspot_failing_to_answer_offers_the_defaults_and_is_logged(
    hubspot: tuple[HubSpotStandIn, str], tmp_path: Path, status: int | str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "gateway.http.wrapup")
    standin, _ = hubspot
    async with gateway(hubspot, tmp_path) as client:
        await install(client)
        # A 401 twice: the client refreshes the token once, then believes it.
        standin.fail_next(PROPERTY, status, times=2)
        answer = await offered(client)
    assert f"call outcomes of HubSpot portal {PORTAL} not read" in caplog.text
    assert answer["source"] == "hubspot-defaults"
    assert [(d["id"], d["label"]) for d in answer["dispositions"]] == list(HUBSPOT_DEFAULT_DISPOSITIONS)


async def test_a_failed_read_is_tried_again_on_the_next_wrap_up(
    hubspot: tuple[HubSpotStandIn, str], tmp_path: Path
) -> None:
    standin, _ = hubspot
    async with gateway(hubspot, tmp_path) as client:
        await install(client)
        standin.fail_next(PROPERTY, 503)
        assert (await offered(client))["source"] == "hubspot-defaults"
        assert (await offered(client))["source"] == "portal"


async def test_a_late_wrap_up_without_a_hubspot_connection_is_refused_as_such(tmp_path: Path) -> None:
    async with running_gateway(make_settings(tmp_path)) as client:
        token = await client.login("alice")
        answer = await client.http.post(
            "/api/calls/ingest:c1/wrap-up", json={"notes": "x"}, headers={"authorization": f"Bearer {token}"}
        )
    assert answer.status_code == 409
    assert answer.json()["error"] == "this gateway has no HubSpot connection to update the call with"
