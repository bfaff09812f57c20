"""What the iframe tells the gateway about calls: engagement ids, dial requests."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.http.bodies import read_json_object
from gateway.http.errors import ApiError
from gateway.http.sessions import current_user, gateway_of
from gateway.model import EngagementConflict
from gateway.parsing import parse_decimal
from gateway.tracker import UnknownCall
from gateway.users.phone import to_e164
from gateway.wire import call_snapshot


async def set_engagement(request: Request) -> JSONResponse:
    gw = gateway_of(request)
    user = current_user(request, gw)
    call_key = request.path_params["call_id"]
    data = await read_json_object(request)
    engagement = data.get("engagementId")
    if isinstance(engagement, str):
        engagement = parse_decimal(engagement)
    if not isinstance(engagement, int) or isinstance(engagement, bool) or engagement <= 0:
        raise ApiError(422, "engagementId must be a positive number", "bad-field")
    try:
        state = await gw.tracker.set_engagement(user.id, call_key, engagement)
    except UnknownCall:
        raise ApiError(404, f"no call {call_key} for this user", "unknown-call") from None
    except EngagementConflict as exc:
        raise ApiError(409, str(exc), "engagement-conflict") from None
    return JSONResponse(call_snapshot(state))


async def get_call(request: Request) -> JSONResponse:
    gw = gateway_of(request)
    user = current_user(request, gw)
    call_key = request.path_params["call_id"]
    state = await gw.tracker.get_call(user.id, call_key)
    if state is None:
        raise ApiError(404, f"no call {call_key} for this user", "unknown-call")
    return JSONResponse(call_snapshot(state))


async def dial(request: Request) -> JSONResponse:
    """HubSpot's click-to-dial hands over a number; placing calls is not built yet."""
    gw = gateway_of(request)
    current_user(request, gw)
    data = await read_json_object(request)
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
