"""The generic signed ingest endpoint, for any in-house PBX script."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.auth.ingest_signature import SignatureError, verify
from gateway.http.bodies import read_body
from gateway.http.errors import ApiError
from gateway.http.sessions import gateway_of
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
    event_ids = await gw.tracker.observe_all(signals)
    return JSONResponse({"accepted": len(signals), "events": event_ids}, status_code=202)


routes = [Route("/api/ingest", ingest, methods=["POST"])]
