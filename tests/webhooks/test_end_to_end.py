"""CPaaS webhooks end to end: signed request in, SSE event out, on a real Redis."""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from gateway.model import EVENT_ORDER
from tests.support.cpaas import (
    ALICE,
    BOB,
    CALLER,
    PUBLIC_URL,
    TWILIO_TOKEN,
    telnyx_body,
    telnyx_headers,
    twilio_params,
    twilio_request,
    twilio_sign,
    vonage_body,
    vonage_headers,
    webhook_settings,
)
from tests.support.harness import Client, make_settings, running_gateway
from tests.support.servers import RedisServer
from tests.support.sse import SseEvent, SseStream

PATHS = {
    "twilio": "/webhooks/twilio/voice-status",
    "telnyx": "/webhooks/telnyx/call-events",
    "vonage": "/webhooks/vonage/voice-events",
}
PROVIDERS = list(PATHS)

Delivery = tuple[bytes, dict[str, str]]


@pytest.fixture
async def gw(tmp_path: Path, redis_server: RedisServer) -> AsyncIterator[Client]:
    settings = make_settings(tmp_path, redis_url=redis_server.url, **webhook_settings())
    async with running_gateway(settings) as client:
        yield client


async def post(gw: Client, provider: str, delivery: Delivery) -> httpx.Response:
    body, headers = delivery
    return await gw.http.post(PATHS[provider], content=body, headers=headers)


def ringing(provider: str, call: str, to: str = ALICE) -> Delivery:
    """A genuine delivery saying an inbound call to ``to`` is ringing."""
    if provider == "twilio":
        return twilio_request(twilio_params(call, "ringing", To=to))
    if provider == "telnyx":
        body = telnyx_body("call.initiated", call, direction="incoming", dst=to)
        return body, telnyx_headers(body)
    body = vonage_body(call, "ringing", to=to.lstrip("+"))
    return body, vonage_headers(body)


def answered_call(provider: str, call: str) -> list[Delivery]:
    """What each provider sends for an inbound call answered and hung up."""
    t = time.time() - 60
    if provider == "twilio":
        return [
            twilio_request(twilio_params(call, "ringing", at=int(t))),
            twilio_request(twilio_params(call, "in-progress", at=int(t) + 5)),
            twilio_request(twilio_params(call, "completed", at=int(t) + 50, CallDuration="45")),
        ]
    if provider == "telnyx":
        bodies = [
            telnyx_body("call.initiated", call, at=t, direction="incoming", state="parked"),
            telnyx_body("call.answered", call, at=t + 5),
            telnyx_body(
                "call.hangup", call, at=t + 50, hangup_cause="normal_clearing", sip_hangup_cause="200"
            ),
        ]
        return [(body, telnyx_headers(body)) for body in bodies]
    bodies = [
        vonage_body(call, "started", at=t),
        vonage_body(call, "ringing", at=t + 0.2),
        vonage_body(call, "answered", at=t + 5),
        vonage_body(call, "completed", at=t + 50, duration="45"),
    ]
    return [(body, vonage_headers(body)) for body in bodies]


async def events_until(stream: SseStream, call_key: str, kind: str) -> list[SseEvent]:
    """Every event up to and including ``kind`` of ``call_key``."""
    seen: list[SseEvent] = []
    while True:
        event = await stream.next()
        seen.append(event)
        if event.json["externalCallId"] == call_key and event.json["type"] == kind:
            return seen


async def metrics(gw: Client) -> str:
    return (await gw.http.get("/metrics")).text


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_signed_webhook_reaches_the_users_stream(gw: Client, provider: str) -> None:
    token = await gw.login("alice")
    async with gw.stream(token) as stream:
        response = await post(gw, provider, ringing(provider, "call-1"))
        assert response.status_code == 200, response.text
        event = (await stream.next()).json
    assert (event["type"], event["externalCallId"]) == ("incomingCall", f"{provider}:call-1")
    assert (event["payload"]["fromNumber"], event["payload"]["toNumber"]) == (CALLER, ALICE)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_shuffled_and_repeated_deliveries_give_each_sdk_event_once(gw: Client, provider: str) -> None:
    token = await gw.login("alice")
    async with gw.stream(token) as stream:
        for seed in range(3):
            call = f"shuffled-{seed}"
            sequence = answered_call(provider, call)
            rng = random.Random(seed)
            deliveries = sequence + rng.sample(sequence, k=len(sequence))
            rng.shuffle(deliveries)
            for delivery in deliveries:
                assert (await post(gw, provider, delivery)).status_code == 200
            # A later call's first event comes after everything the
            # deliveries above published.
            assert (await post(gw, provider, ringing(provider, f"after-{seed}"))).status_code == 200
            seen = await events_until(stream, f"{provider}:after-{seed}", "incomingCall")
            kinds = [e.json["type"] for e in seen if e.json["externalCallId"] == f"{provider}:{call}"]
            assert len(kinds) == len(set(kinds)), kinds
            assert kinds == sorted(kinds, key=EVENT_ORDER.index)
            assert {"incomingCall", "callEnded", "callCompleted"} <= set(kinds)
            ended = next(e.json for e in seen if e.json["type"] == "callEnded")
            assert ended["payload"]["callEndStatus"] == expected_status(provider, sequence, deliveries)


def expected_status(provider: str, sequence: list[Delivery], deliveries: list[Delivery]) -> str:
    # Twilio and Vonage say how long a completed call talked, which implies
    # the answer; Telnyx's hangup does not, so a hangup delivered before the
    # answer leaves an inbound call MISSED (HubSpot cannot be told otherwise).
    if provider != "telnyx":
        return "COMPLETED"
    answered, hangup = sequence[1], sequence[2]
    return "COMPLETED" if deliveries.index(answered) < deliveries.index(hangup) else "MISSED"


def unsigned(delivery: Delivery) -> Delivery:
    body, headers = delivery
    drop = {"x-twilio-signature", "telnyx-signature-ed25519", "authorization"}
    return body, {k: v for k, v in headers.items() if k not in drop}


def forged(delivery: Delivery) -> Delivery:
    body, headers = delivery
    return body.replace(b"555555010", b"555555011"), headers


def stale(provider: str) -> Delivery:
    old = int(time.time()) - 2 * 86400
    if provider == "twilio":
        return twilio_request(twilio_params("stale-call", "ringing", at=old))
    if provider == "telnyx":
        body = telnyx_body("call.initiated", "stale-call", direction="incoming")
        return body, telnyx_headers(body, timestamp=old)
    body = vonage_body("stale-call", "ringing")
    return body, vonage_headers(body, iat=old)


def oversized(provider: str) -> Delivery:
    body, headers = ringing(provider, "big-call")
    return body + b" " * 70_000, headers


BAD: list[tuple[str, Callable[[str], Delivery], int, str]] = [
    ("unsigned", lambda p: unsigned(ringing(p, "bad-call")), 401, "no-signature"),
    ("forged", lambda p: forged(ringing(p, "bad-call")), 403, "bad-signature"),
    ("stale", stale, 403, "stale"),
    ("oversized", oversized, 413, "too-large"),
]


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(("case", "make", "status", "reason"), BAD, ids=[b[0] for b in BAD])
async def test_bad_request_is_refused_counted_and_publishes_nothing(
    gw: Client, provider: str, case: str, make: Callable[[str], Delivery], status: int, reason: str
) -> None:
    token = await gw.login("alice")
    async with gw.stream(token) as stream:
        response = await post(gw, provider, make(provider))
        assert response.status_code == status, response.text
        assert response.json()["error"]
        assert (await post(gw, provider, ringing(provider, "good-call"))).status_code == 200
        first = (await stream.next()).json
    assert first["externalCallId"] == f"{provider}:good-call"
    counted = f'gateway_rejected_total{{reason="{reason}",where="{PATHS[provider]}"}} 1.0'
    assert counted in await metrics(gw)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_number_nobody_has_is_answered_2xx_counted_and_publishes_nothing(
    gw: Client, provider: str
) -> None:
    token = await gw.login("alice")
    async with gw.stream(token) as stream:
        response = await post(gw, provider, ringing(provider, "stranger", to="+15555550177"))
        assert response.status_code == 200
        assert "+15555550177" in response.json()["ignored"]
        await post(gw, provider, ringing(provider, "known"))
        assert (await stream.next()).json["externalCallId"] == f"{provider}:known"
    counted = f'gateway_webhooks_total{{outcome="unknown-number",provider="{provider}"}} 1.0'
    assert counted in await metrics(gw)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_endpoint_of_an_unconfigured_provider_is_404(gateway: Client, provider: str) -> None:
    response = await post(gateway, provider, ringing(provider, "call-1"))
    assert response.status_code == 404
    assert f"{provider} webhooks are not configured: set GATEWAY_" in response.json()["error"]


async def test_broker_outage_is_503_and_the_providers_retry_is_delivered_once(
    gw: Client, redis_server: RedisServer
) -> None:
    delivery = ringing("twilio", "during-outage")
    redis_server.stop()
    response = await post(gw, "twilio", delivery)
    assert response.status_code == 503
    assert "event broker unavailable" in response.json()["error"]
    redis_server.start()
    await gw.until_ready()
    token = await gw.login("alice")
    async with gw.stream(token) as stream:
        assert (await post(gw, "twilio", delivery)).status_code == 200
        assert (await post(gw, "twilio", delivery)).status_code == 200  # and retries once too often
        await post(gw, "twilio", ringing("twilio", "after-outage"))
        seen = await events_until(stream, "twilio:after-outage", "incomingCall")
    assert [e.json["externalCallId"] for e in seen] == ["twilio:during-outage", "twilio:after-outage"]


async def test_twilio_without_public_url_checks_the_url_it_was_sent_to(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, twilio_auth_token=TWILIO_TOKEN)
    async with running_gateway(settings) as gw:
        params = twilio_params("direct", "ringing")
        url = gw.base_url + PATHS["twilio"]
        headers = {"x-twilio-signature": twilio_sign(TWILIO_TOKEN, url, params)}
        response = await gw.http.post(PATHS["twilio"], content=urlencode(params).encode(), headers=headers)
        assert response.status_code == 200, response.text
        # signed for the public URL the gateway was not told about
        assert (await post(gw, "twilio", twilio_request(params))).status_code == 403


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_signature_is_checked_before_the_body_is_read(gw: Client, provider: str) -> None:
    response = await post(gw, provider, (b"{not json at all", {"content-type": "application/json"}))
    assert response.status_code == 401
    assert "missing" in response.json()["error"]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_signed_but_malformed_body_is_400(gw: Client, provider: str) -> None:
    body = b"{not json at all"
    if provider == "twilio":
        # Twilio signs a JSON body through the URL's bodySHA256 parameter.
        digest = hashlib.sha256(body).hexdigest()
        url = f"{PATHS['twilio']}?bodySHA256={digest}"
        signature = twilio_sign(TWILIO_TOKEN, f"{PUBLIC_URL}{url}", {})
        response = await gw.http.post(url, content=body, headers={"x-twilio-signature": signature})
    else:
        headers = telnyx_headers(body) if provider == "telnyx" else vonage_headers(body)
        response = await post(gw, provider, (body, headers))
    assert response.status_code == 400
    assert response.json()["error"].startswith("body is not JSON")


async def test_a_telnyx_call_between_two_users_stays_with_the_caller_when_answered(gw: Client) -> None:
    # Alice calls Bob: her outgoing leg's answer and hangup say no direction,
    # and both numbers are users'. The leg's first event settled it.
    token = await gw.login("alice")
    t = time.time()
    bodies = [
        telnyx_body("call.initiated", "a2b", at=t, direction="outgoing", src=ALICE, dst=BOB),
        telnyx_body("call.answered", "a2b", at=t + 3, src=ALICE, dst=BOB),
        telnyx_body("call.hangup", "a2b", at=t + 60, src=ALICE, dst=BOB, hangup_cause="normal_clearing"),
    ]
    async with gw.stream(token) as stream:
        for body in bodies:
            assert (await post(gw, "telnyx", (body, telnyx_headers(body)))).status_code == 200
        events = [e.json for e in await stream.take(4)]
    assert [e["type"] for e in events] == ["outgoingCall", "callAnswered", "callEnded", "callCompleted"]
    assert events[2]["payload"]["callEndStatus"] == "COMPLETED"
