"""Login and credentials for the iframe's user.

The SDK tells the page a portal id and a HubSpot user id, but anyone can
claim those; identity comes from the gateway's own login, and the HubSpot
ids the page reports must agree with the logged-in user's.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.auth.tokens import Claims, TokenError
from gateway.http.bodies import read_json_object
from gateway.http.errors import ApiError, bearer_refused
from gateway.parsing import parse_decimal
from gateway.runtime import Gateway
from gateway.users.directory import User


def gateway_of(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw


def current_user(request: Request, gw: Gateway, kind: str = "session") -> User:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise bearer_refused("missing bearer token", "no-token")
    return _user_for(gw, token.strip(), kind)


def _user_for(gw: Gateway, token: str, kind: str) -> User:
    return _verified(gw, token, kind, int(time.time()))[0]


def _verified(gw: Gateway, token: str, kind: str, now: int) -> tuple[User, Claims]:
    try:
        claims = gw.signer.verify(token, kind, now)
    except TokenError as exc:
        raise bearer_refused(str(exc), "bad-token") from None
    user = gw.directory.by_id(claims.user_id)
    if user is None:
        raise bearer_refused("user no longer exists", "unknown-user")
    return user, claims


async def user_from_ticket(gw: Gateway, ticket: str) -> User:
    """The ticket's user. A ticket opens one stream, once, on whichever instance.

    It travels in a URL, where logs and browser history may keep it; used
    up, it is worth nothing to whoever reads it there.
    """
    now = int(time.time())
    user, claims = _verified(gw, ticket, "ticket", now)
    if not claims.token_id:
        raise bearer_refused("ticket without an id: ask for a new one", "bad-token")
    if not await gw.broker.burn(claims.token_id, claims.expires_at - now):
        raise bearer_refused("ticket already used: ask for a new one", "ticket-used")
    return user


def _optional_id(data: dict[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, str) and (number := parse_decimal(value)) is not None:
        return number
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ApiError(422, f"{name} must be a number", "bad-field")


def check_hubspot_identity(user: User, portal_id: int | None, hubspot_user_id: int | None) -> None:
    if portal_id is not None and portal_id != user.tenant:
        raise ApiError(403, "this HubSpot portal is not the user's", "portal-mismatch")
    if (
        hubspot_user_id is not None
        and user.hubspot_user_id is not None
        and hubspot_user_id != user.hubspot_user_id
    ):
        raise ApiError(403, "this HubSpot user is not the gateway user", "hubspot-user-mismatch")


# A response carrying a credential must not be kept by the browser or any
# cache on the way (RFC 6749 5.1); Pragma for HTTP/1.0 caches.
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def credential_response(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, headers=_NO_STORE)


# -- the session cookie: sign-in that survives a reload of a cross-site iframe --
# HubSpot embeds the page cross-site, where a browser may refuse it every
# storage (docs/page.md#where-the-page-keeps-what). A partitioned cookie
# (CHIPS) is still kept there, keyed by the top-level site: HubSpot's, so no
# other site's pages send it. It only ever opens /api/session/resume, which
# answers a bearer token like a login; every other route wants the bearer.
SESSION_COOKIE = "gateway_session"


def _cookie_path(request: Request) -> str:
    return f"{request.scope.get('root_path', '')}/api/session"


def _keep_cookie(request: Request, response: Response, token: str, ttl: int) -> None:
    """Sets (or, with ttl 0, forgets) the cookie: a browser matches a partitioned
    cookie only with a Set-Cookie of the same attributes."""
    # Written out: Starlette sets Partitioned only on Python 3.14 and later.
    # A token is base64url and dots, nothing a cookie value must quote.
    response.headers.append(
        "set-cookie",
        f"{SESSION_COOKIE}={token}; Max-Age={ttl}; Path={_cookie_path(request)}; "
        "Secure; HttpOnly; SameSite=None; Partitioned",
    )


def _session(request: Request, gw: Gateway, user: User) -> JSONResponse:
    ttl = gw.settings.token_ttl_seconds
    token = gw.signer.issue(user.id, "session", int(time.time()), ttl)
    response = credential_response({"token": token, "expiresIn": ttl, "user": user.public()})
    _keep_cookie(request, response, token, ttl)
    return response


async def login(request: Request) -> JSONResponse:
    gw = gateway_of(request)
    data = await read_json_object(request)
    name, password = data.get("login"), data.get("password")
    if not isinstance(name, str) or not isinstance(password, str) or not name or not password:
        raise ApiError(422, "login and password are required", "bad-field")
    portal_id = _optional_id(data, "portalId")
    hubspot_user_id = _optional_id(data, "hubspotUserId")
    client = request.client.host if request.client else "unknown"
    wait = await gw.logins.admit(name, client)
    if wait > 0:
        raise ApiError(429, f"too many failed logins; try again in {int(wait) + 1} s", "throttled")
    user = gw.directory.by_login(name)
    ok = await gw.logins.check_password(password, user.password_hash if user else None)
    if user is None or not ok:
        raise ApiError(401, "wrong login or password", "bad-password")
    await gw.logins.succeeded(name, client)
    check_hubspot_identity(user, portal_id, hubspot_user_id)
    return _session(request, gw, user)


async def refresh(request: Request) -> JSONResponse:
    gw = gateway_of(request)
    return _session(request, gw, current_user(request, gw))


async def resume(request: Request) -> JSONResponse:
    """The session the cookie holds, as a fresh bearer token, for the HubSpot ids given.

    JSON only: a cross-origin fetch of it then needs a preflight, which no
    CORS header ever allows; a form posted from elsewhere is refused.
    """
    gw = gateway_of(request)
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise ApiError(415, "send the HubSpot ids as application/json", "not-json")
    data = await read_json_object(request)
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise bearer_refused("no saved session: sign in", "no-cookie")
    user = _user_for(gw, token, "session")
    check_hubspot_identity(user, _optional_id(data, "portalId"), _optional_id(data, "hubspotUserId"))
    return _session(request, gw, user)


async def logout(request: Request) -> Response:
    """Forgets the session cookie (tokens are not revocable: they expire)."""
    response = Response(status_code=204, headers=_NO_STORE)
    _keep_cookie(request, response, "", 0)
    return response


async def me(request: Request) -> JSONResponse:
    gw = gateway_of(request)
    return JSONResponse(current_user(request, gw).public())


async def stream_ticket(request: Request) -> JSONResponse:
    """A one-minute credential for EventSource, which cannot send headers."""
    gw = gateway_of(request)
    user = current_user(request, gw)
    ttl = gw.settings.ticket_ttl_seconds
    ticket = gw.signer.issue(user.id, "ticket", int(time.time()), ttl)
    return credential_response({"ticket": ticket, "expiresIn": ttl})


routes = [
    Route("/api/login", login, methods=["POST"]),
    Route("/api/session/refresh", refresh, methods=["POST"]),
    Route("/api/session/resume", resume, methods=["POST"]),
    Route("/api/session/logout", logout, methods=["POST"]),
    Route("/api/me", me, methods=["GET"]),
    Route("/api/stream-ticket", stream_ticket, methods=["POST"]),
]
