"""What the page's wrap-up offers: ``GET /api/wrap-up``.

A call's outcome (``hs_call_disposition``) is the internal GUID of one of
the portal's call outcomes. Portals define their own: with a HubSpot
connection to the user's portal they are read from it (docs/hubspot.md);
without one, or when HubSpot fails to answer, a gateway configured with
``GATEWAY_CALL_DISPOSITIONS`` offers those, else HubSpot's default set, as
HubSpot's calls API documents it (the label and internal value of each
default outcome, developers.hubspot.com/docs/guides/api/crm/engagements/calls).

A wrap-up saved after the call was already completed in HubSpot (the
deadline passed, a reload) cannot go with ``callCompleted`` any more, and
the SDK has no message that sets properties on an engagement
(``finalizeEngagement`` carries only the ids): ``POST
/api/calls/{id}/wrap-up`` hands it to the call logger, whose outbox
updates the engagement (docs/page.md#wrap-up).
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.calllog.properties import NOTES_MAX_CHARS, wrap_up_properties
from gateway.http.bodies import read_json_object
from gateway.http.errors import ApiError
from gateway.http.sessions import current_user, gateway_of
from gateway.http.wrapup_kept import KEPT_BODY_BYTES, OUTCOME_MAX_CHARS, text_field
from gateway.http.wrapup_kept import routes as kept_routes
from gateway.hubspot.errors import HubSpotError, NotConnected
from gateway.outbox.store import StoreUnavailable
from gateway.runtime import Gateway

log = logging.getLogger(__name__)

HUBSPOT_DEFAULT_DISPOSITIONS: tuple[tuple[str, str], ...] = (
    ("9d9162e7-6cf3-4944-bf63-4dff82258764", "Busy"),
    ("f240bbac-87c9-4f6e-bf70-924b57d47db7", "Connected"),
    ("a4c4c377-d246-4b32-a13b-75a56a4cd0ff", "Left live message"),
    ("b2cf5968-551e-4856-9783-52b3da59a7d0", "Left voicemail"),
    ("73a0d17f-1163-4015-bdd5-ec830791da20", "No answer"),
    ("17b47fee-58de-441e-a44c-c6300d46f273", "Wrong number"),
)


async def wrap_up(request: Request) -> JSONResponse:
    """``{timeoutSeconds, dispositions: [{id, label}]}`` for the signed-in user's page."""
    gw = gateway_of(request)
    user = current_user(request, gw)
    settings = gw.settings
    portals = await _portal_dispositions(gw, user.tenant)
    chosen = portals or settings.call_dispositions or HUBSPOT_DEFAULT_DISPOSITIONS
    source = "portal" if portals else "settings" if settings.call_dispositions else "hubspot-defaults"
    return JSONResponse(
        {
            "timeoutSeconds": settings.wrap_up_seconds,
            "dispositions": [{"id": guid, "label": label} for guid, label in chosen],
            "source": source,
        }
    )


async def _portal_dispositions(gw: Gateway, portal_id: int) -> list[tuple[str, str]]:
    """The portal's own outcomes, or none when there is no connection or HubSpot fails (logged)."""
    if gw.hubspot is None:
        return []
    try:
        return await gw.hubspot.crm.call_dispositions(portal_id)
    except NotConnected:
        return []  # not installed there: the fallback is the designed answer, nothing to log
    except HubSpotError as exc:
        log.warning("call outcomes of HubSpot portal %s not read, offering the fallback: %s", portal_id, exc)
        return []


async def save_wrap_up(request: Request) -> JSONResponse:
    """``{notes, outcome}`` for a call HubSpot already has as completed: an update of its engagement."""
    gw = gateway_of(request)
    user = current_user(request, gw)
    call_key = request.path_params["call_id"]
    data = await read_json_object(request, KEPT_BODY_BYTES)
    notes = text_field(data, "notes", NOTES_MAX_CHARS)
    properties = wrap_up_properties(notes, text_field(data, "outcome", OUTCOME_MAX_CHARS))
    if not properties:
        raise ApiError(422, "a wrap-up needs notes or an outcome", "bad-field")
    if gw.call_logger is None:
        raise ApiError(
            409, "this gateway has no HubSpot connection to update the call with", "no-call-logger"
        )
    state = await gw.tracker.get_call(user.id, call_key)
    if state is None:
        raise ApiError(404, f"no call {call_key} for this user", "unknown-call")
    if state.engagement_id is None:
        raise ApiError(409, f"call {call_key} has no engagement in HubSpot yet", "no-engagement")
    try:
        await gw.call_logger.wrap_up(user.tenant, user.id, call_key, state.engagement_id, properties)
    except StoreUnavailable:
        raise ApiError(503, "the wrap-up could not be kept; try again", "outbox-unavailable") from None
    # On its way to HubSpot: no page offers it again.
    await gw.broker.drop_wrap_up(user.id, call_key)
    return JSONResponse(
        {"engagementId": str(state.engagement_id), "queued": sorted(properties)}, status_code=202
    )


routes = [
    Route("/api/wrap-up", wrap_up, methods=["GET"]),
    Route("/api/calls/{call_id:path}/wrap-up", save_wrap_up, methods=["POST"]),
    *kept_routes,
]
