"""The CPaaS webhook endpoints: the I/O around the sans-I/O provider modules.

Each request goes: size cap -> signature -> payload -> user -> tracker.
Refusals are ``ApiError``s (counted in ``gateway_rejected_total`` by route
and reason); verified deliveries are counted in ``gateway_webhooks_total``
by provider and outcome.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace

from prometheus_client import Counter
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.broker.base import BrokerUnavailable
from gateway.http.errors import ApiError, read_body
from gateway.http.ingest import observe_all
from gateway.model import Direction
from gateway.numbers import to_e164
from gateway.runtime import Gateway
from gateway.sources.webhooks import telnyx, twilio, vonage
from gateway.sources.webhooks.common import CallEvent, Ignored, WebhookError, signals_for

log = logging.getLogger("gateway.webhooks")

TWILIO_PATH = "/webhooks/twilio/voice-status"
TELNYX_PATH = "/webhooks/telnyx/call-events"
VONAGE_PATH = "/webhooks/vonage/voice-events"


def request_url(request: Request, public_url: str) -> str:
    """The URL the provider requested, as it wrote it (path and query still escaped)."""
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    url = (public_url or f"{request.url.scheme}://{request.url.netloc}") + raw_path.decode("latin-1")
    query = request.scope.get("query_string", b"").decode("latin-1")
    return f"{url}?{query}" if query else url


def install(gw: Gateway) -> None:
    settings = gw.settings
    outcomes = Counter(
        "gateway_webhooks_total",
        "Verified CPaaS webhook deliveries, by provider and outcome",
        ["provider", "outcome"],
        registry=gw.metrics.registry,
    )

    async def settle_direction(provider: str, event: CallEvent) -> CallEvent:
        """An event without a direction between two users' numbers belongs to
        the user whose side already holds the call (the leg's initiating
        event said which); only a leg never seen before is taken as inbound."""
        if event.direction is not None:
            return event
        region = gw.directory.default_region
        to_user = gw.directory.by_number(to_e164(event.to_number, region) or "")
        from_user = gw.directory.by_number(to_e164(event.from_number, region) or "")
        if to_user is None or from_user is None or to_user is from_user:
            return event
        key = f"{provider}:{event.call_id}"
        if await gw.broker.get_call(to_user.id, key) is None and await gw.broker.get_call(from_user.id, key):
            return replace(event, direction=Direction.OUTBOUND)
        return event

    async def deliver(provider: str, parsed: list[CallEvent] | Ignored) -> JSONResponse:
        try:
            if not isinstance(parsed, Ignored):
                parsed = [await settle_direction(provider, event) for event in parsed]
        except BrokerUnavailable as exc:
            raise ApiError(503, f"event broker unavailable: {exc}", "broker-down") from None
        signals = signals_for(parsed, provider, gw.directory)
        if isinstance(signals, Ignored):
            # 2xx: the delivery was genuine, and retrying it cannot help.
            outcomes.labels(provider, signals.outcome).inc()
            log.info("%s webhook ignored: %s", provider, signals.reason)
            return JSONResponse({"ignored": signals.reason})
        event_ids = await observe_all(gw, signals)
        outcomes.labels(provider, "accepted").inc()
        return JSONResponse({"accepted": len(signals), "events": event_ids})

    def endpoint(
        provider: str,
        configured: bool,
        setting: str,
        handle: Callable[[Request, bytes], list[CallEvent] | Ignored],
    ) -> Callable[[Request], Awaitable[JSONResponse]]:
        async def receive(request: Request) -> JSONResponse:
            if not configured:
                raise ApiError(404, f"{provider} webhooks are not configured: set {setting}", "disabled")
            body = await read_body(request, settings.max_body_bytes)
            try:
                event = handle(request, body)
            except WebhookError as exc:
                raise ApiError(exc.status, exc.message, exc.reason) from None
            return await deliver(provider, event)

        return receive

    def handle_twilio(request: Request, body: bytes) -> list[CallEvent] | Ignored:
        params = twilio.verify(
            settings.twilio_auth_token,
            request_url(request, settings.public_url),
            body,
            request.headers.get("x-twilio-signature"),
        )
        return twilio.parse(params, int(time.time() * 1000), settings.call_ttl_seconds * 1000)

    telnyx_key = telnyx.load_public_key(settings.telnyx_public_key) if settings.telnyx_public_key else None

    def handle_telnyx(request: Request, body: bytes) -> list[CallEvent] | Ignored:
        assert telnyx_key is not None
        telnyx.verify(
            telnyx_key,
            request.headers.get("telnyx-timestamp"),
            request.headers.get("telnyx-signature-ed25519"),
            body,
            int(time.time()),
            settings.replay_window_seconds,
        )
        return telnyx.parse(body)

    def handle_vonage(request: Request, body: bytes) -> list[CallEvent] | Ignored:
        vonage.verify(
            settings.vonage_signature_secret,
            request.headers.get("authorization"),
            body,
            int(time.time()),
            settings.replay_window_seconds,
        )
        return vonage.parse(body, int(time.time() * 1000))

    gw.routes.extend(
        [
            Route(
                TWILIO_PATH,
                endpoint(
                    "twilio", bool(settings.twilio_auth_token), "GATEWAY_TWILIO_AUTH_TOKEN", handle_twilio
                ),
                methods=["POST"],
            ),
            Route(
                TELNYX_PATH,
                endpoint("telnyx", telnyx_key is not None, "GATEWAY_TELNYX_PUBLIC_KEY", handle_telnyx),
                methods=["POST"],
            ),
            Route(
                VONAGE_PATH,
                endpoint(
                    "vonage",
                    bool(settings.vonage_signature_secret),
                    "GATEWAY_VONAGE_SIGNATURE_SECRET",
                    handle_vonage,
                ),
                methods=["POST"],
            ),
        ]
    )
