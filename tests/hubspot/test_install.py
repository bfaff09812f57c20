"""Connecting a portal: the install link, HubSpot's approval, the callback, over real HTTP."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from gateway.hubspot.cipher import TokenCipher
from gateway.hubspot.install_state import TTL_SECONDS, InstallState
from gateway.hubspot.redis_store import RedisTokenStore
from gateway.standin.hubspot import HubSpotStandIn
from tests.support.harness import Client, make_settings, running_gateway
from tests.support.hubspot import PORTAL, TOKEN_KEY, table
from tests.support.logcheck import expect_log
from tests.support.servers import RedisServer


async def install(gateway: Client) -> httpx.Response:
    """What the admin's browser does: open the link, follow HubSpot's redirects."""
    async with httpx.AsyncClient(follow_redirects=True, timeout=10) as browser:
        return await browser.get(gateway.base_url + "/hubspot/install")


async def test_an_admin_installs_the_app_and_the_portal_is_connected(
    standin: HubSpotStandIn, standin_url: str, tmp_path: Path
) -> None:
    async with running_gateway(
        make_settings(tmp_path, extra={"hubspot": table(standin, standin_url, tmp_path)})
    ) as gw:
        page = await install(gw)
        assert page.status_code == 200
        assert f"HubSpot portal {PORTAL} connected" in page.text
        [status] = gw.gateway.hubspot.connections.statuses()  # type: ignore[union-attr]
        assert (status.portal_id, status.state) == (PORTAL, "connected")
    tokens = (tmp_path / "hubspot-tokens.json").read_text()
    assert not any(token in tokens for token in standin.access_tokens)


async def test_the_install_link_asks_hubspot_for_the_apps_scopes_with_a_state(
    standin: HubSpotStandIn, standin_url: str, tmp_path: Path
) -> None:
    async with running_gateway(
        make_settings(tmp_path, extra={"hubspot": table(standin, standin_url, tmp_path)})
    ) as gw:
        answer = await gw.http.get("/hubspot/install")
    assert answer.status_code == 302
    location = urlsplit(answer.headers["location"])
    assert location.path == "/oauth/authorize"
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["client_id"] == standin.client_id
    assert query["redirect_uri"] == gw.base_url + "/hubspot/oauth/callback"
    assert "crm.objects.contacts.write" in query["scope"].split() and "timeline" in query["scope"].split()
    assert query["state"]


async def test_a_callback_with_a_forged_state_connects_nothing(
    standin: HubSpotStandIn, standin_url: str, tmp_path: Path
) -> None:
    async with running_gateway(
        make_settings(tmp_path, extra={"hubspot": table(standin, standin_url, tmp_path)})
    ) as gw:
        page = await gw.http.get("/hubspot/oauth/callback", params={"code": "x", "state": "1.2.forged"})
        assert page.status_code == 400 and "open /hubspot/install again" in page.text
        assert gw.gateway.hubspot.connections.statuses() == []  # type: ignore[union-attr]


async def test_an_install_the_admin_declined_says_so(
    standin: HubSpotStandIn, standin_url: str, tmp_path: Path
) -> None:
    async with running_gateway(
        make_settings(tmp_path, extra={"hubspot": table(standin, standin_url, tmp_path)})
    ) as gw:
        page = await gw.http.get("/hubspot/oauth/callback", params={"error": "access_denied"})
    assert page.status_code == 400 and "access_denied" in page.text


async def test_hubspot_failing_the_code_exchange_gives_a_page_not_a_traceback(
    standin: HubSpotStandIn, standin_url: str, tmp_path: Path
) -> None:
    standin.fail_next("/oauth/v3/token", 503)
    async with running_gateway(
        make_settings(tmp_path, extra={"hubspot": table(standin, standin_url, tmp_path)})
    ) as gw:
        with expect_log("gateway.hubspot", "install failed", required=False):
            page = await install(gw)
    assert page.status_code == 502
    assert "The app was not installed" in page.text and "Traceback" not in page.text


async def test_without_hubspot_settings_the_install_link_says_so(tmp_path: Path) -> None:
    async with running_gateway(make_settings(tmp_path)) as gw:
        page = await gw.http.get("/hubspot/install")
    assert page.status_code == 404 and "[hubspot]" in page.text


@pytest.mark.parametrize(
    "query",
    [
        {"code": "x", "state": ""},
        {"code": "x", "state": "...."},
        {"code": "x", "state": "١٢٣.nonce.mac"},
        {"code": "x" * 5000, "state": "9999999999.n.\x00"},
        {"state": "1.2.3"},
        # Bytes that are not UTF-8, and markup, in HubSpot's error fields.
        "error=%ED%A0%80&error_description=%3Cscript%3Ealert(1)%3C/script%3E",
    ],
)
async def test_a_hostile_callback_gets_a_plain_refusal(
    standin: HubSpotStandIn, standin_url: str, tmp_path: Path, query: dict[str, str] | str
) -> None:
    async with running_gateway(
        make_settings(tmp_path, extra={"hubspot": table(standin, standin_url, tmp_path)})
    ) as gw:
        raw = query if isinstance(query, str) else urlencode(query)
        page = await gw.http.get(f"/hubspot/oauth/callback?{raw}")
        assert page.status_code == 400
        assert "<script>" not in page.text
        assert gw.gateway.hubspot.connections.statuses() == []  # type: ignore[union-attr]


def test_a_state_is_good_for_ten_minutes_and_only_with_its_signature() -> None:
    states = InstallState("client-secret-0123456789")
    state = states.issue(now=1000)
    assert states.valid(state, now=1000 + TTL_SECONDS)
    assert not states.valid(state, now=1001 + TTL_SECONDS)
    assert not InstallState("another-secret-0123456789").valid(state, now=1000)
    expires, nonce, mac = state.split(".")
    assert not states.valid(f"{int(expires) + 600}.{nonce}.{mac}", now=1000)


async def test_with_redis_the_tokens_are_kept_there_encrypted(
    standin: HubSpotStandIn, standin_url: str, tmp_path: Path, redis_server: RedisServer
) -> None:
    settings = make_settings(
        tmp_path, redis_url=redis_server.url, extra={"hubspot": table(standin, standin_url, tmp_path)}
    )
    async with running_gateway(settings) as gw:
        assert (await install(gw)).status_code == 200
    store = RedisTokenStore(redis_server.url, settings.key_prefix, TokenCipher(TOKEN_KEY))
    try:
        assert list(await store.load()) == [PORTAL]
        [sealed] = (await store._redis.hgetall(store.key)).values()
        assert not any(token in sealed for token in standin.access_tokens)
    finally:
        await store.close()
    assert not (tmp_path / "hubspot-tokens.json").exists()


async def test_a_token_answer_without_the_portal_is_completed_by_introspection(
    standin: HubSpotStandIn, standin_url: str, tmp_path: Path
) -> None:
    standin.hub_id_in_token_answer = False
    async with running_gateway(
        make_settings(tmp_path, extra={"hubspot": table(standin, standin_url, tmp_path)})
    ) as gw:
        page = await install(gw)
    assert page.status_code == 200 and f"HubSpot portal {PORTAL} connected" in page.text
