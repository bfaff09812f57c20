"""How the gateway serves the iframe page, the simulator and the SDK."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.sources import demo
from tests.support.harness import Client, make_settings, running_gateway

SDK_MODULE = "/vendor/calling-extensions-sdk/main.esm.js"


async def test_root_serves_the_iframe_page_under_a_same_origin_policy(gateway: Client) -> None:
    response = await gateway.http.get("/")
    assert response.status_code == 200
    assert 'src="js/app.js"' in response.text
    policies = response.headers.get_list("content-security-policy")
    page = next(p for p in policies if "script-src" in p)
    assert "script-src 'self';" in page
    assert "connect-src 'self';" in page
    assert "default-src 'none'" in page
    framing = next(p for p in policies if p.startswith("frame-ancestors"))
    assert "https://app.hubspot.com" in framing
    assert "*" not in framing


async def test_no_response_allows_cross_origin_reads(gateway: Client) -> None:
    for path in ("/", "/simulator", "/api/me", SDK_MODULE):
        response = await gateway.http.get(path, headers={"origin": "https://evil.example"})
        assert "access-control-allow-origin" not in response.headers, path


async def test_simulator_page_is_served(gateway: Client) -> None:
    response = await gateway.http.get("/simulator")
    assert response.status_code == 200
    assert 'src="js/simulator.js"' in response.text


async def test_sdk_module_comes_from_the_pinned_npm_package(gateway: Client) -> None:
    response = await gateway.http.get(SDK_MODULE)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert "IFrameManager" in response.text
    shim = await gateway.http.get("/js/sdk.js")
    assert f'from "..{SDK_MODULE}"' in shim.text


async def test_npm_tree_and_package_files_are_not_served(gateway: Client) -> None:
    for path in (
        "/node_modules/@hubspot/calling-extensions-sdk/package.json",
        "/package.json",
        "/package-lock.json",
        "/node_modules/.installed",
    ):
        response = await gateway.http.get(path)
        assert response.status_code == 404, path


async def test_configured_cdn_is_the_sdk_source_and_allowed_by_the_policy(tmp_path: Path) -> None:
    cdn = "https://cdn.jsdelivr.net/npm/@hubspot/calling-extensions-sdk@0.9.7/dist/main.esm.js"
    async with running_gateway(make_settings(tmp_path, sdk_url=cdn)) as client:
        shim = await client.http.get("/js/sdk.js")
        assert f'from "{cdn}"' in shim.text
        page = await client.http.get("/")
        policy = next(p for p in page.headers.get_list("content-security-policy") if "script-src" in p)
        assert "script-src 'self' https://cdn.jsdelivr.net;" in policy


async def test_demo_call_endpoint_does_not_exist_outside_dev_mode(gateway: Client) -> None:
    token = await gateway.login("alice")
    response = await gateway.http.post("/api/dev/demo-call", headers={"authorization": f"Bearer {token}"})
    assert response.status_code in (404, 405)


async def test_dev_mode_demo_call_plays_a_whole_call_for_the_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo, "DEMO_TIMING", {"ring": 0.01, "talk": 0.01})
    async with running_gateway(make_settings(tmp_path, dev=True)) as client:
        token = await client.login("alice")
        async with client.stream(token) as stream:
            response = await client.http.post(
                "/api/dev/demo-call?direction=outbound", headers={"authorization": f"Bearer {token}"}
            )
            assert response.status_code == 202
            call = response.json()["externalCallId"]
            types = []
            for _ in range(4):
                event = (await stream.next()).json
                assert event["externalCallId"] == call
                types.append(event["type"])
            assert types == ["outgoingCall", "callAnswered", "callEnded", "callCompleted"]


async def test_dev_mode_demo_call_needs_a_session(tmp_path: Path) -> None:
    async with running_gateway(make_settings(tmp_path, dev=True)) as client:
        response = await client.http.post("/api/dev/demo-call")
        assert response.status_code == 401
