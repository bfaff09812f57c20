"""A HubSpot stand-in per test, and the gateway's HubSpot service connected to its portal 100."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.hubspot.service import HubSpotService
from gateway.hubspot.tokens import TokenGrant
from gateway.standin.hubspot import HubSpotStandIn
from tests.support.hubspot import PORTAL, running_service, serving, settings_for


@pytest.fixture
def standin() -> HubSpotStandIn:
    return HubSpotStandIn(default_portal=PORTAL, slow_seconds=1.0)


@pytest.fixture
async def standin_url(standin: HubSpotStandIn) -> AsyncIterator[str]:
    async with serving(standin) as url:
        yield url


@pytest.fixture
async def service(standin: HubSpotStandIn, standin_url: str, tmp_path: Path) -> AsyncIterator[HubSpotService]:
    """Connected to portal 100 (tokens from the stand-in), timeouts of 0.5 s."""
    async with running_service(settings_for(standin, standin_url, tmp_path, timeout_seconds=0.5)) as service:
        issued = standin.issue_tokens(PORTAL)
        await service.connections.connect(
            TokenGrant(issued["access_token"], issued["refresh_token"], issued["expires_in"], PORTAL)
        )
        yield service
