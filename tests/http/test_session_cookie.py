"""Sign-in that survives a reload of a cross-site iframe: the partitioned session cookie."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support.harness import PASSWORDS, Client, make_settings, running_gateway

ALICE_PORTAL, ALICE_HUBSPOT_ID = 100, 501


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Client]:
    async with running_gateway(make_settings(tmp_path)) as client:
        yield client


def session_cookie(response: httpx.Response) -> tuple[str, list[str]]:
    """The cookie's value and its attributes, lower-cased."""
    headers = [h for h in response.headers.get_list("set-cookie") if h.startswith("gateway_session=")]
    assert len(headers) == 1, response.headers
    pair, *attributes = (part.strip() for part in headers[0].split(";"))
    return pair.partition("=")[2], [a.lower() for a in attributes]


async def log_in(gw: Client) -> httpx.Response:
    body = {"login": "alice", "password": PASSWORDS["alice"], "portalId": ALICE_PORTAL}
    response = await gw.http.post("/api/login", json=body)
    assert response.status_code == 200
    return response


async def resume(gw: Client, cookie: str | None, **ids: int) -> httpx.Response:
    headers = {"cookie": f"gateway_session={cookie}"} if cookie else {}
    return await gw.http.post("/api/session/resume", json=ids, headers=headers)


async def test_login_keeps_the_session_in_a_partitioned_cookie_only_the_session_routes_get(
    gw: Client,
) -> None:
    value, attributes = session_cookie(await log_in(gw))
    assert value
    for wanted in ("secure", "httponly", "samesite=none", "partitioned", "path=/api/session"):
        assert wanted in attributes
    assert f"max-age={gw.gateway.settings.token_ttl_seconds}" in attributes


async def test_the_cookie_resumes_the_session_as_a_fresh_bearer_token(gw: Client) -> None:
    value, _ = session_cookie(await log_in(gw))
    response = await resume(gw, value, portalId=ALICE_PORTAL, hubspotUserId=ALICE_HUBSPOT_ID)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    token = response.json()["token"]
    me = await gw.http.get("/api/me", headers={"authorization": f"Bearer {token}"})
    assert me.json()["login"] == "alice"
    # Resuming keeps the cookie rolling, like a refresh.
    assert session_cookie(response)[0]


async def test_the_cookie_is_refused_for_another_hubspot_user_or_portal(gw: Client) -> None:
    value, _ = session_cookie(await log_in(gw))
    assert (await resume(gw, value, portalId=ALICE_PORTAL, hubspotUserId=502)).status_code == 403
    assert (await resume(gw, value, portalId=999)).status_code == 403


async def test_no_cookie_or_a_bad_one_asks_for_a_sign_in(gw: Client) -> None:
    for cookie in (None, "v1.bogus.token"):
        response = await resume(gw, cookie)
        assert response.status_code == 401
        assert response.json()["error"]


async def test_the_cookie_is_not_a_bearer_for_any_other_route(gw: Client) -> None:
    value, _ = session_cookie(await log_in(gw))
    response = await gw.http.post("/api/stream-ticket", headers={"cookie": f"gateway_session={value}"})
    assert response.status_code == 401


async def test_resume_takes_json_only_so_a_form_from_elsewhere_cannot_post_it(gw: Client) -> None:
    value, _ = session_cookie(await log_in(gw))
    response = await gw.http.post(
        "/api/session/resume",
        content=b"portalId=100",
        headers={"cookie": f"gateway_session={value}", "content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 415


async def test_signing_out_forgets_the_cookie_with_the_attributes_it_was_set_with(gw: Client) -> None:
    response = await gw.http.post("/api/session/logout")
    assert response.status_code == 204
    value, attributes = session_cookie(response)
    assert value == ""
    for wanted in ("max-age=0", "secure", "httponly", "samesite=none", "partitioned", "path=/api/session"):
        assert wanted in attributes
