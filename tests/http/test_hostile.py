"""Odd bytes where numbers and tokens belong: a 4xx, never a crash."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from gateway.parsing import parse_decimal
from gateway.sources.webhooks.common import WebhookError
from gateway.sources.webhooks.twilio import verify as twilio_verify
from gateway.sources.webhooks.vonage import verify as vonage_verify
from tests.support.cpaas import telnyx_body, telnyx_headers, vonage_body, vonage_headers, webhook_settings
from tests.support.harness import Client, make_settings, running_gateway, signal


@pytest.mark.parametrize(
    ("text", "expected"),
    [("42", 42), ("0042", 42), ("²", None), ("٣", None), ("", None), ("-1", None), ("1" * 20, None)],
)
def test_only_short_ascii_digit_strings_are_numbers(text: str, expected: int | None) -> None:
    assert parse_decimal(text) == expected


@pytest.mark.parametrize(
    "authorization",
    [b"Bearer v1.\xc3\xa9.x", b"Bearer v1.a.\xc3\xa9", b"Bearer v1." + b"A" * 5000 + b".x", b"Bearer ..."],
)
async def test_garbage_bearer_tokens_are_401(gateway: Client, authorization: bytes) -> None:
    response = await gateway.http.get("/api/me", headers={b"authorization": authorization})
    assert response.status_code == 401


async def test_a_non_ascii_ticket_is_401(gateway: Client) -> None:
    response = await gateway.http.get("/api/stream?ticket=v1.a.%C3%A9")
    assert response.status_code == 401


async def test_unicode_digits_as_portal_id_are_422(gateway: Client) -> None:
    response = await gateway.http.post(
        "/api/login", json={"login": "alice", "password": "alice-password", "portalId": "²"}
    )
    assert response.status_code == 422


@pytest.mark.parametrize(
    "headers",
    [
        {b"x-gateway-timestamp": b"\xc2\xb2", b"x-gateway-signature": b"v1=00"},
        {b"x-gateway-timestamp": str(int(time.time())).encode(), b"x-gateway-signature": b"v1=\xc3\xa9"},
        {b"x-gateway-timestamp": b"9" * 400, b"x-gateway-signature": b"v1=00"},
    ],
)
async def test_garbage_ingest_signature_headers_are_401(gateway: Client, headers: dict[bytes, bytes]) -> None:
    response = await gateway.http.post("/api/ingest", content=b"{}", headers=headers)
    assert response.status_code == 401


async def test_an_integer_too_long_to_read_is_400(gateway: Client) -> None:
    response = await gateway.ingest(None, raw=b'{"callId": "x", "at": ' + b"9" * 5000 + b"}")
    assert response.status_code == 400


@pytest.mark.parametrize("last_event_id", ["\u00b2-1", "9" * 5000 + "-0", "99999999999999999999-0"])
async def test_an_unreadable_last_event_id_starts_a_fresh_stream(gateway: Client, last_event_id: str) -> None:
    token = await gateway.login("alice")
    async with gateway.stream(token, query=f"?lastEventId={last_event_id}") as stream:
        await gateway.ingest(signal("h1", "ringing"))
        assert (await stream.next()).json["externalCallId"] == "ingest:h1"


async def test_unicode_digits_as_engagement_id_are_422(gateway: Client) -> None:
    await gateway.ingest(signal("e1", "ringing"))
    token = await gateway.login("alice")
    response = await gateway.http.post(
        "/api/calls/ingest:e1/engagement",
        json={"engagementId": "²"},
        headers={"authorization": f"Bearer {token}"},
    )
    assert response.status_code == 422


def test_a_non_ascii_twilio_body_hash_is_refused_not_crashed() -> None:
    with pytest.raises(WebhookError) as caught:
        twilio_verify(
            "token", "https://gw.example/webhooks/twilio/voice-status?bodySHA256=%C3%A9", b"{}", "sig"
        )
    assert caught.value.status == 403


@pytest.mark.parametrize(
    "token",
    [
        "eyJhbGciOiJIUzI1NiJ9.\u00e9.x",
        "eyJhbGciOiJIUzI1NiJ9.e30." + "\u00e9",
        # A header whose JSON holds an integer too long to read.
        __import__("base64").urlsafe_b64encode(b'{"alg":' + b"9" * 5000 + b"}").decode().rstrip("=")
        + ".e30.x",
    ],
)
def test_garbage_vonage_tokens_are_refused_not_crashed(token: str) -> None:
    with pytest.raises(WebhookError) as caught:
        vonage_verify("secret", f"Bearer {token}", b"{}", int(time.time()), 300)
    assert caught.value.status == 403


async def test_a_client_that_leaves_before_the_end_of_its_body_costs_no_traceback(gateway: Client) -> None:
    url = urlsplit(gateway.base_url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    token = await gateway.login("alice")
    writer.write(
        b"POST /api/dial HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\n"
        b"authorization: Bearer " + token.encode() + b'\r\ncontent-length: 100\r\n\r\n{"number":'
    )
    writer.write_eof()
    assert await asyncio.wait_for(reader.read(), 5) == b""  # nobody to answer
    writer.close()
    # The harness's log check fails the test if the gateway logged a traceback.
    assert (await gateway.http.get("/healthz")).status_code == 200


@pytest.fixture
async def webhooks_gateway(tmp_path: Path) -> AsyncIterator[Client]:
    async with running_gateway(make_settings(tmp_path, **webhook_settings())) as client:
        yield client


@pytest.mark.parametrize(
    ("provider", "where"),
    [("telnyx", "event_type"), ("telnyx", "direction"), ("vonage", "status"), ("vonage", "direction")],
)
async def test_an_object_where_a_provider_sends_a_word_is_not_a_crash(
    webhooks_gateway: Client, provider: str, where: str
) -> None:
    if provider == "telnyx":
        doc = json.loads(telnyx_body("call.initiated", "leg-x", direction="incoming"))
        target = doc["data"] if where == "event_type" else doc["data"]["payload"]
        target[where] = {"an": "object"}
        body = json.dumps(doc).encode()
        headers = telnyx_headers(body)
        path = "/webhooks/telnyx/call-events"
    else:
        doc = json.loads(vonage_body("uuid-x", "ringing"))
        doc[where] = ["a", "list"]
        body = json.dumps(doc).encode()
        headers = vonage_headers(body)
        path = "/webhooks/vonage/voice-events"
    response = await webhooks_gateway.http.post(path, content=body, headers=headers)
    assert response.status_code < 500
    assert "ignored" in response.json()
