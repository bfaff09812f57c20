"""Recording routes: what HubSpot calls, the media links, and the providers' recording callbacks.

- ``GET /hubspot/recordings/{externalCallId}``: the ``urlToRetrieveAuthedRecording``
  registered in the app's recording settings (``…/hubspot/recordings/%s``).
  Signed by HubSpot (``X-HubSpot-Signature-v3``); answers
  ``{"authenticatedUrl": "<public url>/recordings/<link>"}``.
- ``GET /recordings/{link}``: the media, Range honoured, while the link lives.
- ``POST /webhooks/twilio/recording-status``, ``POST /webhooks/vonage/recording-events``:
  the providers' recording callbacks. Telnyx posts ``call.recording.saved``
  to its one call-events URL; ``gateway.http.webhooks`` hands it here.

docs/recordings.md.
"""

from __future__ import annotations

import time

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from gateway.auth.hubspot_signature import SignatureRefused
from gateway.auth.hubspot_signature import verify as verify_hubspot
from gateway.http.bodies import read_body
from gateway.http.errors import ApiError
from gateway.http.sessions import gateway_of
from gateway.http.webhooks import request_url
from gateway.hubspot.settings import client_secret
from gateway.recordings.links import LinkRefused
from gateway.recordings.media import MediaUnavailable
from gateway.recordings.service import RecordingService
from gateway.runtime import Gateway
from gateway.sources.webhooks.common import WebhookError
from gateway.sources.webhooks.receiver import Delivery

AUTHED_PATH = "/hubspot/recordings/{external_id:path}"
MEDIA_PATH = "/recordings/{link}"
TWILIO_RECORDING_PATH = "/webhooks/twilio/recording-status"
VONAGE_RECORDING_PATH = "/webhooks/vonage/recording-events"


def _service(gw: Gateway) -> RecordingService:
    if gw.recordings is None:
        raise ApiError(404, "recordings are not served by this gateway", "disabled")
    return gw.recordings


def _requested_uri(request: Request, public_url: str) -> str:
    """The URI HubSpot requested, escapes as sent (the signature is over it)."""
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    base = public_url or f"{request.url.scheme}://{request.url.netloc}"
    # Request targets are ASCII on the wire; a client that sent raw UTF-8 signed it as UTF-8.
    uri = base + raw_path.decode("utf-8", "replace")
    query = request.scope.get("query_string", b"").decode("utf-8", "replace")
    return f"{uri}?{query}" if query else uri


async def authed_url(request: Request) -> JSONResponse:
    gw = gateway_of(request)
    service = _service(gw)
    secret = client_secret(gw.settings)
    if not secret:
        raise ApiError(404, "set the HubSpot app's client secret to serve recordings to HubSpot", "disabled")
    body = await read_body(request, gw.settings.max_body_bytes)
    try:
        verify_hubspot(
            secret,
            request.method,
            _requested_uri(request, gw.settings.public_url),
            body,
            request.headers.get("x-hubspot-signature-v3"),
            request.headers.get("x-hubspot-request-timestamp"),
            int(time.time() * 1000),
        )
    except SignatureRefused as exc:
        raise ApiError(401, f"not a request from HubSpot: {exc}", exc.reason) from None
    external_id = request.path_params["external_id"]
    base_url = gw.settings.public_url or f"{request.url.scheme}://{request.url.netloc}"
    url = await service.authed_url(external_id, base_url)
    if url is None:
        raise ApiError(404, f"no recording of call {external_id}", "unknown-call")
    return JSONResponse({"authenticatedUrl": url})


async def media(request: Request) -> Response:
    gw = gateway_of(request)
    service = _service(gw)
    try:
        external_id = service.link_target(request.path_params["link"])
    except LinkRefused as exc:
        # The link itself is never logged or echoed: it is the credential.
        raise ApiError(
            410 if exc.expired else 403, str(exc), "expired" if exc.expired else "bad-link"
        ) from None
    try:
        answer = await service.media(external_id, request.headers.get("range"))
    except MediaUnavailable as exc:
        raise ApiError(exc.status, exc.message, "media-unavailable") from None
    if request.method == "HEAD" or answer.body is None:
        await answer.close()
        return Response(status_code=answer.status, headers=answer.headers)
    return StreamingResponse(
        answer.body,
        status_code=answer.status,
        headers=answer.headers,
        background=BackgroundTask(answer.close),
    )


async def receive(request: Request, provider: str) -> JSONResponse:
    """One recording callback."""
    gw = gateway_of(request)
    service = _service(gw)
    disabled = service.disabled_reason(provider)
    if disabled:
        raise ApiError(404, disabled, "disabled")
    body = await read_body(request, gw.settings.max_body_bytes)
    delivery = Delivery(request_url(request, gw.settings.public_url), request.headers, body)
    try:
        outcome = await service.receive(provider, delivery)
    except WebhookError as exc:
        raise ApiError(exc.status, exc.message, exc.reason) from None
    if outcome.ignored is not None:
        return JSONResponse({"ignored": outcome.ignored})
    return JSONResponse({"recording": outcome.external_id})


async def twilio_recording(request: Request) -> JSONResponse:
    return await receive(request, "twilio")


async def vonage_recording(request: Request) -> JSONResponse:
    return await receive(request, "vonage")


routes = [
    Route(AUTHED_PATH, authed_url, methods=["GET"]),
    Route(MEDIA_PATH, media, methods=["GET"]),
    Route(TWILIO_RECORDING_PATH, twilio_recording, methods=["POST"]),
    Route(VONAGE_RECORDING_PATH, vonage_recording, methods=["POST"]),
]
