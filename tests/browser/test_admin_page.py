"""The operator page in Chromium, served by one of two ``gateway serve`` processes on one Redis:
both instances, every AOR with the instance that holds it, and a stream open on the other instance."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, expect

from tests.support.fleet import PASSWORD, fleet
from tests.support.servers import RedisServer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

ADMIN_TOKEN = "admin-token-for-the-tests-0123456789"
AORS = 4
# The page reloads itself every 5 s and each instance reports every 2 s.
SETTLE_MS = 20_000


async def test_the_admin_page_shows_both_instances_their_aors_and_the_streams_on_the_other(
    browser: Browser, tmp_path: Path, redis_server: RedisServer
) -> None:
    async with fleet(tmp_path, redis_server, AORS) as group:
        group.env["GATEWAY_ADMIN_TOKEN"] = ADMIN_TOKEN
        first, second = await group.add(2)
        await group.settled(AORS)
        async with httpx.AsyncClient(base_url=second.base_url, timeout=10) as http:
            login = await http.post("/api/login", json={"login": "u2001", "password": PASSWORD})
            token = login.json()["token"]
            headers = {"authorization": f"Bearer {token}"}
            async with http.stream("GET", "/api/stream", headers=headers) as stream:
                assert stream.status_code == 200
                context = await browser.new_context(
                    http_credentials={"username": "admin", "password": ADMIN_TOKEN}
                )
                try:
                    page = await context.new_page()
                    response = await page.goto(first.base_url + "/admin")
                    assert response is not None and response.status == 200
                    await expect(page.get_by_test_id("instances").locator("tbody tr")).to_have_count(
                        2, timeout=SETTLE_MS
                    )
                    subscriptions = page.get_by_test_id("subscriptions").locator("tbody tr")
                    await expect(subscriptions).to_have_count(AORS, timeout=SETTLE_MS)
                    for n in range(AORS):
                        row = subscriptions.nth(n)
                        await expect(row).to_contain_text(f"sip:{2001 + n}@pbx.test", timeout=SETTLE_MS)
                        await expect(row).to_contain_text("active", timeout=SETTLE_MS)
                    streams = page.get_by_test_id("streams").locator("tbody tr")
                    await expect(streams).to_have_count(1, timeout=SETTLE_MS)
                    await expect(streams.first).to_contain_text("u2001", timeout=SETTLE_MS)
                    json_status = (await page.request.get(first.base_url + "/admin/status.json")).json
                    data = await json_status()
                finally:
                    await context.close()
        owners = {s["owner"] for s in data["subscriptions"]}
        assert owners <= {r["id"] for r in data["instances"]}
        assert len(data["sipLive"]) == 2
        assert data["streams"]["u2001"]["total"] == 1
        assert data["instance"] not in data["streams"]["u2001"]["byInstance"]  # the stream is on the other


async def test_the_admin_page_asks_chromium_for_the_credential_and_refuses_a_wrong_one(
    browser: Browser, tmp_path: Path, redis_server: RedisServer
) -> None:
    async with fleet(tmp_path, redis_server, 1) as group:
        group.env["GATEWAY_ADMIN_TOKEN"] = ADMIN_TOKEN
        (only,) = await group.add(1)
        context = await browser.new_context(http_credentials={"username": "admin", "password": "wrong"})
        try:
            page = await context.new_page()
            response = await page.goto(only.base_url + "/admin")
            assert response is not None and response.status == 401
            await expect(page.get_by_test_id("instances")).to_have_count(0)
        finally:
            await context.close()
