"""The client secret, the developer key and the tokens never reach a log line."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from gateway.standin.hubspot import HubSpotStandIn
from tests.support.harness import make_settings, running_gateway
from tests.support.hubspot import PORTAL, TOKEN_KEY, table


async def test_an_install_a_refresh_and_the_settings_log_no_secret(
    standin: HubSpotStandIn, standin_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with running_gateway(
        make_settings(tmp_path, extra={"hubspot": table(standin, standin_url, tmp_path)})
    ) as gw:
        async with httpx.AsyncClient(follow_redirects=True, timeout=10) as browser:
            assert (await browser.get(gw.base_url + "/hubspot/install")).status_code == 200
        service = gw.gateway.hubspot
        assert service is not None
        standin.expire_tokens()
        await service.client.call(PORTAL, "GET", "/crm/v3/owners")  # 401, refresh, again
        await service.calling_settings.show()  # the developer key in the query
        issued = [*standin.refresh_tokens, *standin.access_tokens]  # before the revocation forgets them
        standin.revoke(PORTAL)
        standin.expire_tokens()
        with pytest.raises(Exception, match="invalid_grant"):
            await service.client.call(PORTAL, "GET", "/crm/v3/owners")
        assert "broken" in caplog.text  # the log did record what happened
        reprs = repr(service) + repr(service.connections.statuses()) + repr(service.settings)
    secrets = [
        standin.client_secret,
        standin.developer_api_key,
        TOKEN_KEY,
        *issued,
    ]
    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert [s for s in secrets if s in logged] == []
    assert [s for s in secrets if s in reprs] == []
