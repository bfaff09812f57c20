"""What the iframe tells the gateway about calls: engagement ids, dial requests."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.dial.routes import DialRefused
from gateway.dial.service import request_key_valid
from gateway.http.bodies import read_json_object
from gateway.http.errors import ApiError
from gateway.http.sessions import current_user, gateway_of
from gateway.model import EngagementConflict
from gateway.parsing import parse_decimal
from gateway.tracker import UnknownCall
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
    if gw.recordings is not None:
        # A recording that came first is announced now (docs/recordings.md).
        await gw.recordings.on_engagement(user.tenant, user.id, state.call_key, engagement)
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
    """Click-to-dial: place a call to ``number``; its events come through the stream."""
    gw = gateway_of(request)
    user = current_user(request, gw)
    data = await read_json_object(request)
    number = data.get("number")
    if not isinstance(number, str) or not number.strip():
        raise ApiError(422, "number is required", "bad-field")
    if len(number) > 64:
        raise ApiError(422, "number must be at most 64 characters", "bad-field")
    key = data.get("idempotencyKey")
    if key is not None and (not isinstance(key, str) or not request_key_valid(key)):
        raise ApiError(422, "idempotencyKey must be 1-128 of A-Z a-z 0-9 . _ : -", "bad-field")
    caller_id = data.get("callerId")
    if caller_id is not None and (not isinstance(caller_id, str) or len(caller_id) > 64):
        raise ApiError(422, "callerId must be a phone number of at most 64 characters", "bad-field")
    try:
        dialled = await gw.dialling.dial(user, number, request_key=key, caller_id=caller_id)
    except DialRefused as exc:
        refusal = exc.refusal
        headers = None
        if refusal.retry_after_seconds is not None:
            headers = {"Retry-After": str(refusal.retry_after_seconds)}
        raise ApiError(refusal.status, refusal.message, f"dial-{refusal.reason}", headers) from None
    return JSONResponse(
        {"externalCallId": dialled.call_key, "number": dialled.number, "callerId": dialled.caller_id},
        status_code=202,
    )


routes = [
    Route("/api/calls/{call_id:path}/engagement", set_engagement, methods=["POST"]),
    Route("/api/calls/{call_id:path}", get_call, methods=["GET"]),
    Route("/api/dial", dial, methods=["POST"]),
]
