"""JSON from the network: what RFC 8259 allows, nested no deeper than the gateway reads, or a 400."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from gateway.jsontext import MAX_DEPTH, JsonTextError, loads, nesting_depth
from tests.support.cpaas import telnyx_headers, twilio_json_request, vonage_headers, webhook_settings
from tests.support.harness import Client, make_settings, running_gateway, signal

DEEP = b"[" * 4000  # under 4 KiB: fits the cap of the page's own small bodies


def test_brackets_inside_strings_do_not_count() -> None:
    assert nesting_depth('[{"a": "[[[[{{{{", "b": [1, "\\"]]]["]}]') == 3


def test_a_document_as_deep_as_the_limit_is_read() -> None:
    text = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert loads(text) is not None


def test_a_document_one_level_deeper_is_refused() -> None:
    text = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)
    with pytest.raises(JsonTextError, match=f"nested deeper than {MAX_DEPTH} levels"):
        loads(text)


def test_a_million_open_brackets_are_refused_not_recursed_into() -> None:
    with pytest.raises(JsonTextError, match="nested deeper"):
        loads(b"[" * 1_000_000)


def test_invalid_utf8_and_long_integers_are_json_text_errors() -> None:
    for bad in (b'{"a": "\xff"}', b"[" + b"9" * 5000 + b"]"):
        with pytest.raises(JsonTextError):
            loads(bad)


@pytest.mark.parametrize("text", [r'["\ud800"]', r'{"\udc00": 1}', r'["a\udbff"]'])
def test_a_string_with_a_lone_surrogate_is_refused(text: str) -> None:
    with pytest.raises(JsonTextError, match="lone surrogate"):
        loads(text)


def test_a_surrogate_pair_reads_as_its_character() -> None:
    assert loads(r'["\ud83d\ude00"]') == ["\U0001f600"]


@pytest.mark.parametrize("text", ["[NaN]", "[Infinity]", "[-Infinity]", "[1e400]", "[-1e400]"])
def test_numbers_json_does_not_have_are_refused(text: str) -> None:
    with pytest.raises(JsonTextError):
        loads(text)


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Client]:
    async with running_gateway(make_settings(tmp_path, **webhook_settings())) as client:
        yield client


Send = Callable[[Client, bytes], Awaitable[httpx.Response]]


async def _login(gw: Client, body: bytes) -> httpx.Response:
    return await gw.http.post("/api/login", content=body, headers={"content-type": "application/json"})


async def _engagement(gw: Client, body: bytes) -> httpx.Response:
    await gw.ingest(signal("deep-1", "ringing"))
    token = await gw.login("alice")
    return await gw.http.post(
        "/api/calls/ingest:deep-1/engagement", content=body, headers={"authorization": f"Bearer {token}"}
    )


async def _dial(gw: Client, body: bytes) -> httpx.Response:
    token = await gw.login("alice")
    return await gw.http.post("/api/dial", content=body, headers={"authorization": f"Bearer {token}"})


async def _ingest(gw: Client, body: bytes) -> httpx.Response:
    return await gw.ingest(None, raw=body)


async def _twilio_json(gw: Client, body: bytes) -> httpx.Response:
    path, body, headers = twilio_json_request(body)
    return await gw.http.post(path, content=body, headers=headers)


async def _telnyx(gw: Client, body: bytes) -> httpx.Response:
    return await gw.http.post("/webhooks/telnyx/call-events", content=body, headers=telnyx_headers(body))


async def _vonage(gw: Client, body: bytes) -> httpx.Response:
    return await gw.http.post("/webhooks/vonage/voice-events", content=body, headers=vonage_headers(body))


SENDERS: dict[str, Send] = {
    "login": _login,
    "engagement": _engagement,
    "dial": _dial,
    "ingest": _ingest,
    "twilio-json": _twilio_json,
    "telnyx": _telnyx,
    "vonage": _vonage,
}


@pytest.mark.parametrize("route", list(SENDERS))
async def test_a_body_nested_thousands_deep_is_400_on_every_route_that_reads_json(
    gw: Client, route: str
) -> None:
    response = await SENDERS[route](gw, DEEP)
    assert response.status_code == 400, response.text
    assert f"nested deeper than {MAX_DEPTH} levels" in response.json()["error"]


async def test_a_signed_ingest_body_nested_20000_deep_is_400(gw: Client) -> None:
    response = await gw.ingest(None, raw=b"[" * 20_000 + b"]" * 20_000)
    assert response.status_code == 400
    assert "nested deeper" in response.json()["error"]


async def test_a_vonage_token_whose_header_is_nested_thousands_deep_is_refused(gw: Client) -> None:
    body = b"{}"
    segment = base64.urlsafe_b64encode(DEEP).rstrip(b"=").decode()
    response = await gw.http.post(
        "/webhooks/vonage/voice-events",
        content=body,
        headers={"content-type": "application/json", "authorization": f"Bearer {segment}.e30.AAAA"},
    )
    assert response.status_code == 403
    assert "not JSON" in response.json()["error"]


async def test_a_login_body_with_a_lone_surrogate_is_400(gw: Client) -> None:
    response = await _login(gw, b'{"login": "alice", "password": "pass\\ud800word"}')
    assert response.status_code == 400
    assert "lone surrogate" in response.json()["error"]
