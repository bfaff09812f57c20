"""A portal's connection over time: refreshed ahead of expiry; revoked, broken and visible everywhere."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from gateway.hubspot.cipher import TokenCipher
from gateway.hubspot.errors import Unauthorized
from gateway.hubspot.service import HubSpotService
from gateway.hubspot.store import FileTokenStore
from gateway.hubspot.tokens import PortalTokens, TokenGrant
from gateway.standin.hubspot import HubSpotStandIn
from tests.support.harness import make_settings, running_gateway
from tests.support.hubspot import PORTAL, TOKEN_KEY, run_cli, settings_for, table, toml_of


class WatchedStore(FileTokenStore):
    """The file store, telling a test each time it saved."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, TokenCipher(TOKEN_KEY))
        self.saved: asyncio.Queue[PortalTokens] = asyncio.Queue()

    async def save(self, tokens: PortalTokens) -> None:
        await super().save(tokens)
        self.saved.put_nowait(tokens)


async def test_a_token_is_refreshed_ahead_of_its_expiry(
    standin: HubSpotStandIn, standin_url: str, tmp_path: Path
) -> None:
    standin.token_seconds = 3
    store = WatchedStore(tmp_path / "tokens.json")
    # Refresh 2.5 s before expiry: 0.5 s after each token is issued.
    service = HubSpotService(settings_for(standin, standin_url, tmp_path, refresh_margin_seconds=2.5), store)
    await service.start()
    try:
        issued = standin.issue_tokens(PORTAL)
        await service.connections.connect(
            TokenGrant(issued["access_token"], issued["refresh_token"], 3, PORTAL)
        )
        first = await asyncio.wait_for(store.saved.get(), 5)
        refreshed = await asyncio.wait_for(store.saved.get(), 5)
        assert refreshed.access_token != first.access_token
        assert refreshed.access_token in standin.access_tokens
        # No request was needed for it, and none failed.
        assert standin.requests == []
    finally:
        await service.stop()


async def test_a_revoked_portal_is_broken_in_readyz_the_metric_and_the_status_command(
    standin: HubSpotStandIn, standin_url: str, tmp_path: Path
) -> None:
    hubspot = table(standin, standin_url, tmp_path)
    config = tmp_path / "gateway.toml"
    config.write_text(toml_of(hubspot))
    async with running_gateway(make_settings(tmp_path, extra={"hubspot": hubspot})) as gw:
        async with httpx.AsyncClient(follow_redirects=True, timeout=10) as browser:
            assert (await browser.get(gw.base_url + "/hubspot/install")).status_code == 200
        ready = (await gw.http.get("/readyz")).json()
        assert ready["checks"]["hubspot"] == {"ok": True, "detail": f"portal {PORTAL} connected"}
        code, out, _ = await run_cli("hubspot", "status", config=config)
        assert code == 0 and f"portal {PORTAL}\tconnected" in out

        standin.revoke(PORTAL)
        service = gw.gateway.hubspot
        assert service is not None
        with pytest.raises(Unauthorized):
            await service.client.call(PORTAL, "GET", "/crm/v3/owners")

        answer = await gw.http.get("/readyz")
        assert answer.status_code == 503
        assert answer.json()["checks"]["hubspot"] == {"ok": False, "detail": f"portal {PORTAL} broken"}
        metrics = (await gw.http.get("/metrics")).text
        assert 'gateway_hubspot_portals{state="broken"} 1.0' in metrics
        assert 'gateway_hubspot_portals{state="connected"} 0.0' in metrics
        code, out, _ = await run_cli("hubspot", "status", config=config)
        assert code == 0 and f"portal {PORTAL}\tbroken" in out and "invalid_grant" in out
        assert not any(token in out for token in standin.access_tokens)
