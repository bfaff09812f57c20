"""The CPaaS webhook routes: HTTP around ``gateway.sources.webhooks.receiver``.

Each request goes: configured? -> size cap -> the receiver (signature,
payload, user, tracker). Refusals are ``ApiError``s, counted in
``gateway_rejected_total`` by route and reason.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.http.bodies import read_body
from gateway.http.errors import ApiError
from gateway.http.sessions import gateway_of
from gateway.sources.webhooks import telnyx
from gateway.sources.webhooks.common import WebhookError
from gateway.sources.webhooks.receiver import Delivery

TWILIO_PATH = "/webhooks/twilio/voice-status"
TELNYX_PATH = "/webhooks/telnyx/call-events"
VONAGE_PATH = "/webhooks/vonage/voice-events"


def request_url(request: Request, public_url: str) -> str:
    """The URL the provider requested, as it wrote it (path and query still escaped)."""
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    url = (public_url or f"{request.url.scheme}://{request.url.netloc}") + raw_path.decode("latin-1")
    query = request.scope.get("query_string", b"").decode("latin-1")
    return f"{url}?{query}" if query else url


def endpoint(provider: str) -> Callable[[Request], Awaitable[JSONResponse]]:
    async def receive(request: Request) -> JSONResponse:
        gw = gateway_of(request)
        disabled = gw.webhooks.disabled_reason(provider)
        if disabled:
            raise ApiError(404, disabled, "disabled")
        body = await read_body(request, gw.settings.max_body_bytes)
        delivery = Delivery(request_url(request, gw.settings.public_url), request.headers, body)
        try:
            if provider == "telnyx" and gw.recordings is not None and telnyx.is_recording(body):
                # Telnyx posts call.recording.saved to the same URL as the call's events.
                saved = await gw.recordings.receive(provider, delivery)
                return JSONResponse(
                    {"ignored": saved.ignored} if saved.ignored else {"recording": saved.external_id}
                )
            outcome = await gw.webhooks.receive(provider, delivery)
            if provider == "vonage" and gw.recordings is not None:
                # Verified: which leg its conversation is, for the recording event to come.
                await gw.recordings.note_vonage_status(body)
        except WebhookError as exc:
            raise ApiError(exc.status, exc.message, exc.reason) from None
        if outcome.ignored is not None:
            return JSONResponse({"ignored": outcome.ignored})
        return JSONResponse({"accepted": outcome.accepted, "events": list(outcome.event_ids)})

    return receive


routes = [
    Route(TWILIO_PATH, endpoint("twilio"), methods=["POST"]),
    Route(TELNYX_PATH, endpoint("telnyx"), methods=["POST"]),
    Route(VONAGE_PATH, endpoint("vonage"), methods=["POST"]),
]
