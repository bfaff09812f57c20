"""The HubSpot app's install: ``GET /hubspot/install`` and the OAuth callback.

An admin opens the install link; it redirects to HubSpot's authorize page
with a signed, ten-minute ``state``. HubSpot sends the browser back to the
callback with a ``code``, which is exchanged for the portal's tokens. Every
outcome is a short plain page: "portal N connected", or what went wrong
(never a traceback). No session is needed: approving the app in HubSpot
takes a HubSpot admin, and the state ties the callback to an install
started here.
"""

from __future__ import annotations

import html
import logging
import time

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from gateway.http.sessions import gateway_of
from gateway.hubspot.errors import HubSpotError
from gateway.hubspot.service import CALLBACK_PATH, INSTALL_PATH, HubSpotService

log = logging.getLogger("gateway.hubspot")


def _page(status: int, title: str, text: str) -> HTMLResponse:
    body = (
        f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></body></html>"
    )
    return HTMLResponse(body, status_code=status, headers={"cache-control": "no-store"})


def _service(request: Request) -> HubSpotService | None:
    return gateway_of(request).hubspot


def _redirect_uri(request: Request) -> str:
    # The public URL when set (behind a proxy); else the address this request came to.
    base = gateway_of(request).settings.public_url or str(request.base_url).rstrip("/")
    return base + CALLBACK_PATH


async def install(request: Request) -> Response:
    service = _service(request)
    if service is None:
        return _page(404, "HubSpot is not set up", "This gateway has no [hubspot] settings.")
    state = service.install_state.issue(time.time())
    return RedirectResponse(service.oauth.authorize_url(_redirect_uri(request), state), status_code=302)


async def callback(request: Request) -> Response:
    service = _service(request)
    if service is None:
        return _page(404, "HubSpot is not set up", "This gateway has no [hubspot] settings.")
    query = request.query_params
    if "error" in query:
        said = query.get("error_description") or query["error"]
        return _page(400, "The app was not installed", f"HubSpot said: {said[:200]}")
    code, state = query.get("code", ""), query.get("state", "")
    if not code:
        return _page(400, "The app was not installed", "HubSpot's answer had no code.")
    if not service.install_state.valid(state, time.time()):
        return _page(
            400,
            "The app was not installed",
            f"This link is too old or was not started here: open {INSTALL_PATH} again.",
        )
    try:
        grant = await service.oauth.exchange(code, _redirect_uri(request))
        portal = await service.connections.connect(grant)
    except HubSpotError as exc:
        log.warning("a HubSpot install failed: %s", exc)
        return _page(502, "The app was not installed", f"{exc} Try {INSTALL_PATH} again.")
    return _page(200, f"HubSpot portal {portal} connected", f"The gateway now logs calls in portal {portal}.")


routes = [
    Route(INSTALL_PATH, install, methods=["GET"]),
    Route(CALLBACK_PATH, callback, methods=["GET"]),
]
