"""``/admin/status.json``: who may read it, and what it says of every instance on one Redis."""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path
from typing import Any

from gateway.hubspot.cipher import TokenCipher
from gateway.hubspot.errors import Rejected
from gateway.hubspot.redis_store import RedisTokenStore
from gateway.hubspot.tokens import PortalTokens
from tests.support.crm_records import InMemoryCallRecords
from tests.support.harness import Client, make_settings, running_gateway, signal
from tests.support.servers import RedisServer

ADMIN_TOKEN = "admin-token-for-the-tests-0123456789"
TOKEN_KEY = "token-key-for-tests-0123456789"
BEARER = {"authorization": f"Bearer {ADMIN_TOKEN}"}


def basic(password: str, user: str = "admin") -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def status_until(client: Client, done: Any, seconds: float = 15) -> dict[str, Any]:
    """Poll until ``done(status)``: instances report every 2 s, which is only observable by reading."""
    deadline = time.monotonic() + seconds
    while True:
        response = await client.http.get("/admin/status.json", headers=BEARER)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        if done(data):
            return data
        assert time.monotonic() < deadline, data
        await asyncio.sleep(0.1)


async def test_the_admin_page_is_off_without_an_admin_token(tmp_path: Path) -> None:
    async with running_gateway(make_settings(tmp_path)) as gw:
        for path in ("/admin", "/admin/status.json"):
            response = await gw.http.get(path, headers=BEARER)
            assert response.status_code == 403
            assert "GATEWAY_ADMIN_TOKEN" in response.json()["error"]


async def test_no_credential_is_asked_for_with_a_basic_challenge(tmp_path: Path) -> None:
    async with running_gateway(make_settings(tmp_path, admin_token=ADMIN_TOKEN)) as gw:
        response = await gw.http.get("/admin/status.json")
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith('Basic realm="gateway admin"')


async def test_a_wrong_credential_is_refused_and_a_user_session_is_no_admin_credential(
    tmp_path: Path,
) -> None:
    async with running_gateway(make_settings(tmp_path, admin_token=ADMIN_TOKEN)) as gw:
        assert (await gw.http.get("/admin", headers=basic("wrong"))).status_code == 401
        assert (await gw.http.get("/admin", headers={"authorization": "Basic %%%"})).status_code == 401
        session = await gw.login("alice")
        response = await gw.http.get("/admin/status.json", headers={"authorization": f"Bearer {session}"})
        assert response.status_code == 401


async def test_failed_tries_are_throttled_like_logins_and_the_right_token_then_waits_too(
    tmp_path: Path,
) -> None:
    async with running_gateway(make_settings(tmp_path, admin_token=ADMIN_TOKEN)) as gw:
        answers = [(await gw.http.get("/admin", headers=basic(f"guess-{n}"))).status_code for n in range(11)]
        assert answers == [401] * 10 + [429]
        assert (await gw.http.get("/admin", headers=basic(ADMIN_TOKEN))).status_code == 429


async def test_the_token_opens_the_page_as_basic_or_bearer_under_a_strict_policy(tmp_path: Path) -> None:
    async with running_gateway(make_settings(tmp_path, admin_token=ADMIN_TOKEN)) as gw:
        page = await gw.http.get("/admin", headers=basic(ADMIN_TOKEN, user="anyone"))
        assert page.status_code == 200
        assert "<h2>Instances</h2>" in page.text and "<script" not in page.text
        policy = page.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
        assert (await gw.http.get("/admin/status.json", headers=BEARER)).status_code == 200


async def test_one_instance_shows_every_instance_its_streams_and_its_event_counts(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    settings = make_settings(tmp_path, redis_url=redis_server.url, admin_token=ADMIN_TOKEN)
    async with running_gateway(settings) as one, running_gateway(settings) as two:
        token = await two.login("alice")
        async with two.stream(token), two.stream(token):
            assert (await two.ingest(signal("a1", "ringing"))).status_code == 202
            data = await status_until(
                one,
                lambda d: (
                    len(d["instances"]) == 2
                    and d["streams"].get("alice", {}).get("total") == 2
                    and any(r["totals"]["events"] >= 1 for r in d["instances"])
                ),
            )
        mine, other = data["instances"]
        assert mine["id"] == data["instance"] and other["id"] != mine["id"]
        assert data["streams"]["alice"]["byInstance"] == {other["id"]: 2}
        assert other["totals"]["signals"] == 1
        assert data["hubspot"] is None and data["outbox"] is None


async def test_an_instance_that_stops_leaves_the_list(tmp_path: Path, redis_server: RedisServer) -> None:
    settings = make_settings(tmp_path, redis_url=redis_server.url, admin_token=ADMIN_TOKEN)
    async with running_gateway(settings) as one:
        async with running_gateway(settings):
            await status_until(one, lambda d: len(d["instances"]) == 2)
        data = await status_until(one, lambda d: len(d["instances"]) == 1)
        assert data["instances"][0]["id"] == data["instance"]


async def test_the_outbox_shows_its_depth_and_each_dead_letter_with_its_reason(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    records = InMemoryCallRecords()
    records.fail("find_call", Rejected("HubSpot answered 400: property hs_call_body is invalid"))
    hubspot = {"log_grace_seconds": 0, "app_id": 4242}
    settings = make_settings(
        tmp_path, redis_url=redis_server.url, admin_token=ADMIN_TOKEN, extra={"hubspot": hubspot}
    )
    async with running_gateway(settings, call_records=records) as gw:
        body = {"signals": [signal("c1", "ringing"), signal("c1", "answered"), signal("c1", "ended")]}
        assert (await gw.ingest(body)).status_code == 202
        data = await status_until(gw, lambda d: d["outbox"]["dead"] == 1)
        (letter,) = data["outbox"]["deadLetters"]
        assert "hs_call_body is invalid" in letter["reason"] and "ingest:c1" in letter["key"]
        page = await gw.http.get("/admin", headers=BEARER)
        assert "1 dead letters" in page.text and "hs_call_body is invalid" in page.text


async def test_hubspot_portals_show_with_their_connection_state(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    store = RedisTokenStore(redis_server.url, "gw", TokenCipher(TOKEN_KEY))
    far = time.time() + 6 * 3600
    await store.save(PortalTokens(100, "access-100", "refresh-100", far))
    await store.save(
        PortalTokens(200, "access-200", "refresh-200", far, broken="the refresh token was revoked")
    )
    await store.close()
    settings = make_settings(
        tmp_path,
        redis_url=redis_server.url,
        admin_token=ADMIN_TOKEN,
        hubspot_client_secret="client-secret-for-tests",
        hubspot_token_key=TOKEN_KEY,
        extra={"hubspot": {"app_id": 4242, "client_id": "client-id-for-tests"}},
    )
    async with running_gateway(settings) as gw:
        data = await status_until(gw, lambda d: len(d["hubspot"]["portals"]) == 2)
        portals = {p["portalId"]: (p["state"], p["reason"]) for p in data["hubspot"]["portals"]}
        assert portals == {100: ("connected", ""), 200: ("broken", "the refresh token was revoked")}
        page = (await gw.http.get("/admin", headers=BEARER)).text
        assert "the refresh token was revoked" in page and "access-100" not in page
