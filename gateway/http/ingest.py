"""The generic signed ingest endpoint, for any in-house PBX script."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.broker.base import BrokerUnavailable, Conflict
from gateway.http.auth import gateway_of
from gateway.http.errors import ApiError, read_body
from gateway.model import Signal
from gateway.runtime import Gateway
from gateway.signing import SignatureError, verify
from gateway.sources.ingest import IngestError, parse_signals


async def ingest(request: Request) -> JSONResponse:
    gw = gateway_of(request)
    settings = gw.settings
    if not settings.ingest_secret:
        raise ApiError(503, "ingest is disabled: set GATEWAY_INGEST_SECRET", "disabled")
    body = await read_body(request, settings.max_body_bytes)
    try:
        verify(
            settings.ingest_secret,
            request.headers.get("x-gateway-timestamp"),
            request.headers.get("x-gateway-signature"),
            body,
            int(time.time()),
            settings.replay_window_seconds,
        )
    except SignatureError as exc:
        raise ApiError(401, str(exc), "bad-signature") from None
    try:
        signals = parse_signals(body, gw.directory, int(time.time() * 1000))
    except IngestError as exc:
        raise ApiError(exc.status, exc.message, "bad-signal") from None
    event_ids = await observe_all(gw, signals)
    return JSONResponse({"accepted": len(signals), "events": event_ids}, status_code=202)


async def observe_all(gw: Gateway, signals: list[Signal]) -> list[str]:
    """Hand signals to the call tracker; the ids of the events they emitted.

    A broker outage is a 503, so the sender retries; the model makes the
    retry harmless.
    """
    event_ids: list[str] = []
    try:
        for signal in signals:
            event_ids.extend(e.id for e in await gw.tracker.observe(signal))
    except BrokerUnavailable as exc:
        raise ApiError(503, f"event broker unavailable: {exc}", "broker-down") from None
    except Conflict as exc:
        raise ApiError(503, str(exc), "conflict") from None
    return event_ids


routes = [Route("/api/ingest", ingest, methods=["POST"])]
