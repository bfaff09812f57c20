"""What the iframe tells the gateway about calls: engagement ids, dial requests."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.broker.base import BrokerUnavailable
from gateway.digits import decimal
from gateway.http.auth import current_user, gateway_of
from gateway.http.errors import ApiError, read_body
from gateway.model import EngagementConflict
from gateway.numbers import to_e164
from gateway.tracker import UnknownCall


async def _object(request: Request) -> dict[str, object]:
    try:
        data = json.loads(await read_body(request, 4096) or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ApiError(400, "body is not JSON", "bad-json") from None
    if not isinstance(data, dict):
        raise ApiError(422, "body must be a JSON object", "bad-json")
    return data


async def set_engagement(request: Request) -> JSONResponse:
    gw = gateway_of(request)
    user = current_user(request, gw)
    call_key = request.path_params["call_id"]
    data = await _object(request)
    engagement = data.get("engagementId")
    if isinstance(engagement, str):
        engagement = decimal(engagement)
    if not isinstance(engagement, int) or isinstance(engagement, bool) or engagement <= 0:
        raise ApiError(422, "engagementId must be a positive number", "bad-field")
    try:
        state = await gw.tracker.set_engagement(user.id, call_key, engagement)
    except UnknownCall:
        raise ApiError(404, f"no call {call_key} for this user", "unknown-call") from None
    except EngagementConflict as exc:
        raise ApiError(409, str(exc), "engagement-conflict") from None
    except BrokerUnavailable as exc:
        raise ApiError(503, f"event broker unavailable: {exc}", "broker-down") from None
    return JSONResponse(state.snapshot())


async def get_call(request: Request) -> JSONResponse:
    gw = gateway_of(request)
    user = current_user(request, gw)
    call_key = request.path_params["call_id"]
    try:
        state = await gw.broker.get_call(user.id, call_key)
    except BrokerUnavailable as exc:
        raise ApiError(503, f"event broker unavailable: {exc}", "broker-down") from None
    if state is None:
        raise ApiError(404, f"no call {call_key} for this user", "unknown-call")
    return JSONResponse(state.snapshot())


async def dial(request: Request) -> JSONResponse:
    """HubSpot's click-to-dial hands over a number; placing calls is not built yet."""
    gw = gateway_of(request)
    current_user(request, gw)
    data = await _object(request)
    number = data.get("number")
    if not isinstance(number, str) or not number.strip():
        raise ApiError(422, "number is required", "bad-field")
    e164 = to_e164(number, gw.settings.default_region)
    return JSONResponse(
        {
            "number": e164,
            "error": "click-to-dial is not available yet: dial the number on your phone; "
            "the call will appear here when the phone system reports it",
        },
        status_code=501,
    )


routes = [
    Route("/api/calls/{call_id:path}/engagement", set_engagement, methods=["POST"]),
    Route("/api/calls/{call_id:path}", get_call, methods=["GET"]),
    Route("/api/dial", dial, methods=["POST"]),
]
