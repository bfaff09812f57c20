"""A HubSpot stand-in: the OAuth and API requests the gateway makes, answered as HubSpot documents them.

Kept in memory per portal, for tests to assert on and for the dev page
(``/dev/hubspot/``) that lists the calls logged. Which HubSpot reference
each part follows (developers.hubspot.com/docs):

- OAuth: ``/oauth/authorize`` (the install URL: client_id, redirect_uri,
  scope, state; the stand-in approves at once and redirects back with a
  ``code``), ``POST /oauth/v3/token`` (form body; ``authorization_code`` and
  ``refresh_token`` grants; ``access_token``, ``refresh_token``, ``expires_in``,
  ``hub_id``, ``scopes``; ``invalid_grant`` for a bad code or refresh token)
  and ``POST /oauth/v3/token/introspect`` ("Manage OAuth tokens (v3)").
- CRM: ``/crm/v3/objects/calls`` (create with ``associations``, PATCH,
  ``/search``; "Activities | Calls"), ``/crm/v3/objects/{contacts,companies}/search``
  ("CRM search": ``filterGroups`` OR'd, their ``filters`` AND'ed, operators
  EQ, IN and NOT_HAS_PROPERTY; at most 5 groups, 10 filters a group, 25 in
  all), ``/crm/v3/owners`` ("Owners", ``paging.next.after``),
  ``GET /crm/v3/properties/calls/hs_call_disposition`` ("Properties | Read a
  property": the property with its ``options``, each ``label``, ``value``,
  ``displayOrder``, ``hidden``; 404 for a property the portal lacks). Each
  portal has its own call outcomes (``Portal.dispositions``), HubSpot's
  default set unless a test gives it others.
- Calling: ``/crm/extensions/calling/2026-03/{appId}/settings`` and
  ``/settings/recording`` (developer API key in ``hapikey``),
  ``/crm/extensions/calling/2026-03/recordings/ready`` and ``/inbound-call``
  ("Calling extensions" reference, 2026-03).
- Errors: HubSpot's JSON error body (``status``, ``message``,
  ``correlationId``, ``category``); 401 ``EXPIRED_AUTHENTICATION`` for an
  expired token; 429 with ``Retry-After`` absent and the
  ``X-HubSpot-RateLimit-*`` headers ("API usage guidelines and limits").

Faults for tests: ``fail_next`` answers the next requests under a path
(and of a method, if given) with a status (429 with the rate-limit headers,
5xx, 401) or slowly (the request is still carried out, after the wait: a
create whose answer the gateway gave up on exists all the same);
``expire_tokens`` and ``revoke`` play an expired token and an uninstall.

Search is eventually consistent in HubSpot: a record created or changed
shows in the search endpoints only a few seconds later (HubSpot's CRM
search is served from an index; integration vendors document waiting about
10 s after a create before searching). ``search_lag_seconds`` plays that:
a record is found by search only that long after it was created.

Which path logged a call: an engagement HubSpot made for the calling
widget (the SDK's ``incomingCall``/``outgoingCall``; ``widget_engagement``
plays it) or one the gateway created through the CRM API; the page at
``/dev/hubspot/`` shows it, and the updates the gateway made.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from gateway.http.wrapup import HUBSPOT_DEFAULT_DISPOSITIONS

CALLING = "/crm/extensions/calling/2026-03"
TOKEN_SECONDS = 1800  # HubSpot's access tokens last 30 minutes
CALL_TO_CONTACT = 194
CALL_TO_COMPANY = 182
RATE_HEADERS = {
    "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
    "X-HubSpot-RateLimit-Max": "100",
}


@dataclass
class Record:
    id: str
    properties: dict[str, str]
    created_at: str = field(default_factory=lambda: _iso(time.time()))
    updated_at: str = field(default_factory=lambda: _iso(time.time()))
    # (object type id, record id, association type id)
    associations: list[tuple[str, str, int]] = field(default_factory=list)
    # For calls: "gateway" (created through the CRM API) or "widget" (HubSpot's, for the SDK).
    created_by: str = ""
    # Epoch seconds on the stand-in's clock: when search starts finding it.
    searchable_at: float = 0.0
    # The property names of each PATCH, in order.
    updates: list[list[str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "properties": {**self.properties, "hs_object_id": self.id},
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "archived": False,
        }


@dataclass
class Portal:
    portal_id: int
    contacts: dict[str, Record] = field(default_factory=dict)
    companies: dict[str, Record] = field(default_factory=dict)
    calls: dict[str, Record] = field(default_factory=dict)
    # HubSpot user id -> owner id
    owners: dict[int, str] = field(default_factory=dict)
    recordings_ready: list[str] = field(default_factory=list)
    inbound_calls: list[dict[str, Any]] = field(default_factory=list)
    # The options of its hs_call_disposition property: (value, label, hidden).
    dispositions: list[tuple[str, str, bool]] = field(
        default_factory=lambda: [(value, label, False) for value, label in HUBSPOT_DEFAULT_DISPOSITIONS]
    )


@dataclass
class Token:
    portal_id: int
    expires_at: float


@dataclass
class Fault:
    path: str  # a prefix of the request path
    status: int | str  # a status, or "slow"
    times: int
    headers: dict[str, str] = field(default_factory=dict)
    method: str = ""  # any method when empty
    exact: bool = False  # the path itself, not the paths under it


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(epoch))


def _path_of(call: Record) -> str:
    """Which path logged the call, in the page's words."""
    made = {
        "gateway": "gateway (created through the CRM API, no widget)",
        "widget": "widget (created by HubSpot for the calling widget)",
    }.get(call.created_by, "unknown")
    if call.updates:
        made += f", updated by the gateway ({len(call.updates)}x)"
    return made


async def _form(request: Request) -> dict[str, str]:
    # A URL-encoded body, read without Starlette's form parser (which needs python-multipart).
    return dict(parse_qsl((await request.body()).decode("utf-8", "replace")))


def _error(status: int, message: str, category: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category}
    return JSONResponse(body, status_code=status, headers=headers)


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


class HubSpotStandIn:
    """HubSpot's side: apps' credentials, portals and their records, tokens, faults."""

    def __init__(
        self,
        client_id: str = "standin-client-id",
        client_secret: str = "standin-client-secret-0123456789",  # noqa: S107 (the stand-in's own)
        app_id: int = 424242,
        developer_api_key: str = "standin-developer-key",
        default_portal: int = 100,
        clock: Callable[[], float] = time.time,
        slow_seconds: float = 2.0,
        search_lag_seconds: float = 0.0,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.app_id = app_id
        self.developer_api_key = developer_api_key
        self.default_portal = default_portal
        self.clock = clock
        self.slow_seconds = slow_seconds
        self.search_lag_seconds = search_lag_seconds
        self.portals: dict[int, Portal] = {}
        self.access_tokens: dict[str, Token] = {}
        self.refresh_tokens: dict[str, int] = {}
        self.codes: dict[str, tuple[int, str]] = {}  # code -> (portal, redirect_uri)
        self.calling_settings: dict[str, Any] | None = None
        self.recording_settings: dict[str, Any] | None = None
        self.faults: list[Fault] = []
        # (method, path) of every API request, for tests to count.
        self.requests: list[tuple[str, str]] = []
        self.token_seconds = TOKEN_SECONDS
        # Token answers name the portal (HubSpot's since August 2025); False plays an older answer.
        self.hub_id_in_token_answer = True
        self._ids = itertools.count(5001)

    # -- state for tests and the dev page ---------------------------------
    def portal(self, portal_id: int) -> Portal:
        return self.portals.setdefault(portal_id, Portal(portal_id))

    def add_contact(self, portal_id: int, **properties: str) -> str:
        record = Record(str(next(self._ids)), dict(properties))
        self.portal(portal_id).contacts[record.id] = record
        return record.id

    def add_company(self, portal_id: int, **properties: str) -> str:
        record = Record(str(next(self._ids)), dict(properties))
        self.portal(portal_id).companies[record.id] = record
        return record.id

    def widget_engagement(self, portal_id: int, **properties: str) -> str:
        """The engagement HubSpot creates when the calling widget reports a call (SDK ``incomingCall``)."""
        record = Record(str(next(self._ids)), dict(properties), created_by="widget")
        record.searchable_at = self.clock() + self.search_lag_seconds
        self.portal(portal_id).calls[record.id] = record
        return record.id

    def add_owner(self, portal_id: int, user_id: int) -> str:
        owner = str(next(self._ids))
        self.portal(portal_id).owners[user_id] = owner
        return owner

    def issue_tokens(self, portal_id: int) -> dict[str, Any]:
        """A fresh grant for ``portal_id``, as the token endpoint answers it."""
        self.portal(portal_id)
        refresh = f"standin-refresh-{secrets.token_urlsafe(16)}"
        self.refresh_tokens[refresh] = portal_id
        return self._access(portal_id, refresh)

    def _access(self, portal_id: int, refresh: str) -> dict[str, Any]:
        access = f"standin-access-{secrets.token_urlsafe(24)}"
        self.access_tokens[access] = Token(portal_id, self.clock() + self.token_seconds)
        answer: dict[str, Any] = {
            "token_type": "bearer",
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": self.token_seconds,
            "scopes": ["oauth", "crm.objects.contacts.read", "crm.objects.contacts.write", "timeline"],
        }
        if self.hub_id_in_token_answer:
            answer["hub_id"] = portal_id
        return answer

    def expire_tokens(self) -> None:
        """Every access token expires now (the refresh tokens still work)."""
        for token in self.access_tokens.values():
            token.expires_at = self.clock() - 1

    def revoke(self, portal_id: int) -> None:
        """The app was uninstalled from the portal: its tokens stop working."""
        self.access_tokens = {k: t for k, t in self.access_tokens.items() if t.portal_id != portal_id}
        self.refresh_tokens = {k: p for k, p in self.refresh_tokens.items() if p != portal_id}

    def fail_next(
        self,
        path: str,
        status: int | str,
        times: int = 1,
        headers: dict[str, str] | None = None,
        method: str = "",
        exact: bool = False,
    ) -> None:
        """The next ``times`` requests whose path starts with ``path`` answer ``status`` (or "slow").

        With ``method``, only requests of that method count; with ``exact``,
        only ``path`` itself (a call's create, not the search under it).
        """
        self.faults.append(Fault(path, status, times, headers or {}, method.upper(), exact))

    # -- plumbing ----------------------------------------------------------
    async def _fault(self, request: Request) -> Response | None:
        path = request.url.path.removeprefix(request.scope.get("root_path", ""))
        for fault in self.faults:
            if fault.method and fault.method != request.method:
                continue
            if fault.exact and path != fault.path:
                continue
            if fault.times > 0 and path.startswith(fault.path):
                fault.times -= 1
                if fault.status == "slow":
                    await asyncio.sleep(self.slow_seconds)
                    return None
                status = int(fault.status)
                if status == 429:
                    headers = {**RATE_HEADERS, "X-HubSpot-RateLimit-Remaining": "0", **fault.headers}
                    return _error(
                        429, "You have reached your ten_secondly_rolling limit.", "RATE_LIMITS", headers
                    )
                if status == 401:
                    return _error(
                        401, "The OAuth token used to make this call expired.", "EXPIRED_AUTHENTICATION"
                    )
                return _error(status, "internal error (stand-in fault)", "INTERNAL_ERROR", fault.headers)
        return None

    def _portal_of(self, request: Request) -> Portal | Response:
        auth = request.headers.get("authorization", "")
        token = (
            self.access_tokens.get(auth.removeprefix("Bearer ").strip())
            if auth.startswith("Bearer ")
            else None
        )
        if token is None:
            return _error(401, "Authentication credentials not found.", "INVALID_AUTHENTICATION")
        if token.expires_at <= self.clock():
            return _error(401, "The OAuth token used to make this call expired.", "EXPIRED_AUTHENTICATION")
        return self.portal(token.portal_id)

    def _developer(self, request: Request) -> Response | None:
        if request.query_params.get("hapikey") != self.developer_api_key:
            return _error(401, "The API key provided is invalid.", "INVALID_AUTHENTICATION")
        return None

    def _api(self, handler: Callable[[Request, Portal], Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            self.requests.append((request.method, request.url.path))
            # The body is HubSpot's once sent: a slow answer still acts on it
            # after the client gave up waiting (and disconnected).
            await request.body()
            fault = await self._fault(request)
            if fault is not None:
                return fault
            portal = self._portal_of(request)
            if isinstance(portal, Response):
                return portal
            if request.method in ("POST", "PATCH"):
                try:
                    await request.json()  # kept by Starlette for the handler
                except ValueError:
                    return _error(400, "Invalid input JSON", "VALIDATION_ERROR")
            response: Response = await handler(request, portal)
            response.headers.update({**RATE_HEADERS, "X-HubSpot-RateLimit-Remaining": "99"})
            return response

        return endpoint

    # -- OAuth ---------------------------------------------------------------
    async def authorize(self, request: Request) -> Response:
        query = request.query_params
        if query.get("client_id") != self.client_id:
            return HTMLResponse("<p>Unknown app (client_id).</p>", status_code=400)
        redirect = query.get("redirect_uri", "")
        if not redirect:
            return HTMLResponse("<p>redirect_uri is missing.</p>", status_code=400)
        portal = int(query.get("portal", self.default_portal))
        self.portal(portal)
        code = f"standin-code-{secrets.token_urlsafe(12)}"
        self.codes[code] = (portal, redirect)
        back = {"code": code, **({"state": query["state"]} if "state" in query else {})}
        return RedirectResponse(f"{redirect}?{urlencode(back)}", status_code=302)

    async def token(self, request: Request) -> Response:
        fault = await self._fault(request)
        if fault is not None:
            return fault
        form = await _form(request)
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return _oauth_error(401, "invalid_client", "client_id or client_secret is wrong")
        grant = form.get("grant_type")
        if grant == "authorization_code":
            found = self.codes.pop(str(form.get("code", "")), None)
            if found is None or found[1] != form.get("redirect_uri"):
                return _oauth_error(400, "invalid_grant", "missing or unknown auth code")
            return JSONResponse(self.issue_tokens(found[0]))
        if grant == "refresh_token":
            refresh = str(form.get("refresh_token", ""))
            portal = self.refresh_tokens.get(refresh)
            if portal is None:
                return _oauth_error(400, "invalid_grant", "missing or unknown refresh token")
            return JSONResponse(self._access(portal, refresh))
        return _oauth_error(400, "unsupported_grant_type", f"grant_type {grant!r}")

    async def introspect(self, request: Request) -> Response:
        form = await _form(request)
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return _oauth_error(401, "invalid_client", "client_id or client_secret is wrong")
        token = self.access_tokens.get(str(form.get("token", "")))
        if token is None or token.expires_at <= self.clock():
            return JSONResponse({"active": False})
        return JSONResponse(
            {
                "active": True,
                "hub_id": token.portal_id,
                "app_id": self.app_id,
                "client_id": self.client_id,
                "token_type": "access_token",
                "exp": int(token.expires_at),
            }
        )

    # -- CRM -----------------------------------------------------------------
    def _matches(self, record: Record, groups: list[dict[str, Any]]) -> bool:
        def ok(f: dict[str, Any]) -> bool:
            value = record.properties.get(str(f.get("propertyName")))
            if f.get("operator") == "EQ":
                return value is not None and value == str(f.get("value"))
            if f.get("operator") == "NOT_HAS_PROPERTY":
                return value is None
            if f.get("operator") == "IN":
                return value is not None and value in [str(v) for v in f.get("values", [])]
            return False

        return any(all(ok(f) for f in group.get("filters", [])) for group in groups) if groups else True

    async def _search(self, request: Request, records: dict[str, Record]) -> Response:
        body = await request.json()
        groups = body.get("filterGroups", [])
        if len(groups) > 5:
            return _error(400, "Too many filter groups (at most 5)", "VALIDATION_ERROR")
        sizes = [len(group.get("filters", [])) for group in groups]
        if any(size > 10 for size in sizes) or sum(sizes) > 25:
            return _error(400, "Too many filters (at most 10 a group, 25 in all)", "VALIDATION_ERROR")
        now = self.clock()
        found = [r.to_json() for r in records.values() if r.searchable_at <= now and self._matches(r, groups)]
        limit = int(body.get("limit", 10))
        return JSONResponse({"total": len(found), "results": found[:limit]})

    async def search_contacts(self, request: Request, portal: Portal) -> Response:
        return await self._search(request, portal.contacts)

    async def search_companies(self, request: Request, portal: Portal) -> Response:
        return await self._search(request, portal.companies)

    async def search_calls(self, request: Request, portal: Portal) -> Response:
        return await self._search(request, portal.calls)

    async def create_call(self, request: Request, portal: Portal) -> Response:
        body = await request.json()
        properties = body.get("properties")
        if not isinstance(properties, dict) or "hs_timestamp" not in properties:
            return _error(400, "Property values were not valid: hs_timestamp is required", "VALIDATION_ERROR")
        record = Record(
            str(next(self._ids)), {k: str(v) for k, v in properties.items()}, created_by="gateway"
        )
        record.searchable_at = self.clock() + self.search_lag_seconds
        for association in body.get("associations", []):
            target = str(association.get("to", {}).get("id"))
            for kind in association.get("types", []):
                type_id = kind.get("associationTypeId")
                if type_id == CALL_TO_CONTACT and target in portal.contacts:
                    record.associations.append(("0-1", target, type_id))
                elif type_id == CALL_TO_COMPANY and target in portal.companies:
                    record.associations.append(("0-2", target, type_id))
                else:
                    return _error(400, f"invalid association {type_id} to {target}", "VALIDATION_ERROR")
        portal.calls[record.id] = record
        return JSONResponse(record.to_json(), status_code=201)

    async def update_call(self, request: Request, portal: Portal) -> Response:
        record = portal.calls.get(request.path_params["call_id"])
        if record is None:
            return _error(404, "Object not found.", "OBJECT_NOT_FOUND")
        body = await request.json()
        changes = {k: str(v) for k, v in body.get("properties", {}).items()}
        record.properties.update(changes)
        record.updates.append(sorted(changes))
        record.updated_at = _iso(time.time())
        return JSONResponse(record.to_json())

    async def owners(self, request: Request, portal: Portal) -> Response:
        everyone = sorted(portal.owners.items(), key=lambda item: item[1])
        start = int(request.query_params.get("after", "0"))
        limit = int(request.query_params.get("limit", "100"))
        page = everyone[start : start + limit]
        results = [
            {"id": owner, "userId": user, "email": f"user{user}@example.com", "archived": False}
            for user, owner in page
        ]
        body: dict[str, Any] = {"results": results}
        if start + limit < len(everyone):
            body["paging"] = {"next": {"after": str(start + limit)}}
        return JSONResponse(body)

    async def call_property(self, request: Request, portal: Portal) -> Response:
        name = request.path_params["name"]
        if name != "hs_call_disposition":
            return _error(404, f"Unable to find property {name} for object type calls", "OBJECT_NOT_FOUND")
        options = [
            {"label": label, "value": value, "displayOrder": order, "hidden": hidden, "description": ""}
            for order, (value, label, hidden) in enumerate(portal.dispositions)
        ]
        return JSONResponse(
            {
                "name": name,
                "label": "Call outcome",
                "type": "enumeration",
                "fieldType": "select",
                "groupName": "call",
                "hidden": False,
                "options": options,
            }
        )

    async def recording_ready(self, request: Request, portal: Portal) -> Response:
        body = await request.json()
        engagement = str(body.get("engagementId", ""))
        if engagement not in portal.calls:
            return _error(404, f"no call engagement {engagement}", "OBJECT_NOT_FOUND")
        portal.recordings_ready.append(engagement)
        return Response(status_code=200)

    async def inbound_call(self, request: Request, portal: Portal) -> Response:
        body = await request.json()
        if not body.get("externalCallId") or not isinstance(body.get("fromNumber"), dict):
            return _error(400, "externalCallId and fromNumber are required", "VALIDATION_ERROR")
        portal.inbound_calls.append(body)
        number = str(body["fromNumber"].get("e164Number", ""))
        matches: list[dict[str, Any]] = [
            {
                "callerIdType": "CONTACT",
                "objectCoordinates": {
                    "portalId": portal.portal_id,
                    "objectId": int(c.id),
                    "objectTypeId": "0-1",
                },
                "firstName": c.properties.get("firstname", ""),
                "lastName": c.properties.get("lastname", ""),
                "email": c.properties.get("email", ""),
            }
            for c in portal.contacts.values()
            if number and number in (c.properties.get("phone"), c.properties.get("mobilephone"))
        ]
        if body.get("createEngagement"):
            properties = {
                "hs_timestamp": str(body.get("callStartedTimestamp", "")),
                "hs_call_external_id": str(body["externalCallId"]),
                "hs_call_direction": "INBOUND",
                **{k: str(v) for k, v in body.get("engagementProperties", {}).items()},
            }
            record = Record(str(next(self._ids)), properties)
            record.associations = [
                ("0-1", str(m["objectCoordinates"]["objectId"]), CALL_TO_CONTACT) for m in matches
            ]
            portal.calls[record.id] = record
        return JSONResponse({"callerIdMatches": matches})

    # -- calling settings (developer API key) --------------------------------
    async def settings(self, request: Request) -> Response:
        self.requests.append((request.method, request.url.path))
        refused = self._developer(request)
        if refused is not None:
            return refused
        if int(request.path_params["app_id"]) != self.app_id:
            return _error(404, "unknown app", "OBJECT_NOT_FOUND")
        recording = request.url.path.endswith("/recording")
        current = self.recording_settings if recording else self.calling_settings
        if request.method == "GET":
            if current is None:
                return _error(404, "no settings for this app", "OBJECT_NOT_FOUND")
            return JSONResponse(current)
        if request.method == "DELETE":
            self._store_settings(recording, None)
            return Response(status_code=204)
        body = await request.json()
        required = ["urlToRetrieveAuthedRecording"] if recording else list(_SETTINGS_FIELDS)
        if request.method == "POST":
            if current is not None:
                return _error(409, "settings exist already: use PATCH", "CONFLICT")
            missing = [name for name in required if name not in body]
            if missing:
                return _error(400, f"missing fields {missing}", "VALIDATION_ERROR")
            now = _iso(time.time())
            current = {"createdAt": now}
        elif current is None:
            return _error(404, "no settings for this app", "OBJECT_NOT_FOUND")
        current = {
            **current,
            **{k: v for k, v in body.items() if k in required},
            "updatedAt": _iso(time.time()),
        }
        self._store_settings(recording, current)
        return JSONResponse(current)

    def _store_settings(self, recording: bool, value: dict[str, Any] | None) -> None:
        if recording:
            self.recording_settings = value
        else:
            self.calling_settings = value

    # -- the simulator's side of HubSpot (dev only) ----------------------------
    async def sdk_engagement(self, request: Request) -> Response:
        """What HubSpot does when the widget reports a call: an engagement, its id for the SDK.

        Not a HubSpot API (HubSpot does it inside its own page): the dev
        simulator, which plays HubSpot's page, asks for it here so that the
        engagement the widget reports exists in this CRM, as it would in HubSpot.
        """
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("externalCallId"), str):
            return _error(400, "externalCallId is required", "VALIDATION_ERROR")
        portal = body.get("portalId", self.default_portal)
        if not isinstance(portal, int) or isinstance(portal, bool):
            return _error(400, "portalId must be a number", "VALIDATION_ERROR")
        engagement = self.widget_engagement(portal, hs_timestamp=str(int(self.clock() * 1000)))
        return JSONResponse({"engagementId": int(engagement)}, status_code=201)

    # -- the page a newcomer watches -----------------------------------------
    async def page(self, request: Request) -> Response:
        rows = []
        for portal in sorted(self.portals.values(), key=lambda p: p.portal_id):
            for call in sorted(portal.calls.values(), key=lambda c: int(c.id), reverse=True):
                attached = []
                for type_id, record_id, _ in call.associations:
                    records = portal.contacts if type_id == "0-1" else portal.companies
                    record = records.get(record_id)
                    props = record.properties if record else {}
                    name = " ".join(
                        filter(None, (props.get("firstname"), props.get("lastname")))
                    ) or props.get("name", "")
                    kind = "contact" if type_id == "0-1" else "company"
                    attached.append(f"{kind} {record_id} {name}".strip())
                properties = "".join(
                    f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>"
                    for k, v in sorted(call.properties.items())
                )
                rows.append(
                    f"<section><h2>call {call.id} (portal {portal.portal_id})</h2>"
                    f"<p>logged by: {html.escape(_path_of(call))}</p>"
                    f"<p>attached to: {html.escape(', '.join(attached) or 'no record')}</p>"
                    f"<table>{properties}</table></section>"
                )
        body = "".join(rows) or "<p>No call logged yet.</p>"
        return HTMLResponse(
            "<!doctype html><html><head><meta charset=utf-8><meta http-equiv=refresh content=3>"
            "<title>HubSpot stand-in: calls logged</title>"
            "<style>body{font-family:sans-serif;margin:2em}td{padding:2px 8px;border-bottom:1px solid #ddd}"
            "</style></head><body><h1>HubSpot stand-in: calls logged</h1>"
            "<p>What the gateway logged in the stand-in's CRM (refreshes every 3 s).</p>"
            f"{body}</body></html>"
        )

    def routes(self) -> list[Route]:
        return [
            Route("/", self.page, methods=["GET"]),
            Route("/oauth/authorize", self.authorize, methods=["GET"]),
            Route("/sdk/engagements", self.sdk_engagement, methods=["POST"]),
            Route("/oauth/v3/token", self.token, methods=["POST"]),
            Route("/oauth/v3/token/introspect", self.introspect, methods=["POST"]),
            Route("/crm/v3/objects/contacts/search", self._api(self.search_contacts), methods=["POST"]),
            Route("/crm/v3/objects/companies/search", self._api(self.search_companies), methods=["POST"]),
            Route("/crm/v3/objects/calls/search", self._api(self.search_calls), methods=["POST"]),
            Route("/crm/v3/objects/calls", self._api(self.create_call), methods=["POST"]),
            Route("/crm/v3/objects/calls/{call_id}", self._api(self.update_call), methods=["PATCH"]),
            Route("/crm/v3/owners", self._api(self.owners), methods=["GET"]),
            Route("/crm/v3/properties/calls/{name}", self._api(self.call_property), methods=["GET"]),
            Route(CALLING + "/recordings/ready", self._api(self.recording_ready), methods=["POST"]),
            Route(CALLING + "/inbound-call", self._api(self.inbound_call), methods=["POST"]),
            Route(CALLING + "/{app_id}/settings", self.settings, methods=["GET", "POST", "PATCH", "DELETE"]),
            Route(
                CALLING + "/{app_id}/settings/recording",
                self.settings,
                methods=["GET", "POST", "PATCH", "DELETE"],
            ),
        ]

    def app(self) -> Starlette:
        return Starlette(routes=self.routes())


_SETTINGS_FIELDS = (
    "name",
    "url",
    "width",
    "height",
    "isReady",
    "supportsCustomObjects",
    "supportsInboundCalling",
    "usesCallingWindow",
    "usesRemote",
)
