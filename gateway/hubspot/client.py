"""One request to HubSpot's API, with the portal's token, paced, its answer sorted into an error.

- 2xx: the JSON body (None for 204).
- 401: the portal's token is refreshed once and the request sent again;
  a second 401 is ``Unauthorized``.
- 429: ``RateLimited`` with the wait from HubSpot's headers; the portal's
  pacer holds its other requests as long, and a request that would wait
  for its slot longer than the pacer allows is ``RateLimited`` at once.
- 5xx, a timeout, a dropped connection: ``Transient``.
- any other 4xx: ``Rejected`` with HubSpot's ``message``.

Nothing else leaves this module: callers never see httpx.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from gateway.hubspot.connections import Connections
from gateway.hubspot.errors import HubSpotError, RateLimited, Rejected, Transient, Unauthorized
from gateway.hubspot.ratelimit import Busy, Pacing, retry_after
from gateway.ops.httplog import redact_request_queries

log = logging.getLogger("gateway.hubspot")

_MESSAGE_CHARS = 200


def http_client(timeout_seconds: float) -> httpx.AsyncClient:
    # The developer API key rides in the query of the calling-settings requests.
    redact_request_queries()
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_seconds), follow_redirects=False, headers={"accept": "application/json"}
    )


def error_for(response: httpx.Response, what: str) -> HubSpotError | None:
    """The error a non-2xx answer means (None for a 2xx); 401 counts as Unauthorized here."""
    status = response.status_code
    if status < 300:
        return None
    if status == 429:
        wait = retry_after(response.headers)
        return RateLimited(f"{what}: HubSpot's rate limit (429), retry in {wait:g} s", wait)
    if status >= 500:
        return Transient(f"{what}: HubSpot failed ({status})")
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    message = str(body.get("message", "")) if isinstance(body, dict) else ""
    text = f"{what}: HubSpot refused ({status}{': ' + message[:_MESSAGE_CHARS] if message else ''})"
    return Unauthorized(text) if status == 401 else Rejected(text)


async def send(http: httpx.AsyncClient, request: httpx.Request, what: str) -> httpx.Response:
    try:
        return await http.send(request)
    except httpx.TimeoutException:
        raise Transient(f"{what}: HubSpot did not answer in time") from None
    except httpx.HTTPError as exc:
        raise Transient(f"{what}: HubSpot could not be reached ({type(exc).__name__})") from None


def body_of(response: httpx.Response, what: str) -> Any:
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        raise Transient(f"{what}: HubSpot's answer was not JSON") from None


class HubSpotClient:
    def __init__(
        self, api_base: str, http: httpx.AsyncClient, connections: Connections, pacer: Pacing
    ) -> None:
        self.api_base = api_base
        self.http = http
        self.connections = connections
        self.pacer = pacer

    async def call(
        self,
        portal: int,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        search: bool = False,
    ) -> Any:
        """HubSpot's JSON answer to ``method path`` for ``portal``; raises only HubSpotError."""
        what = f"{method} {path}"
        token = await self.connections.access_token(portal)
        for attempt in (1, 2):
            try:
                await self.pacer.acquire(portal, search)
            except Busy as busy:
                raise RateLimited(f"{what}: portal {portal} has no request slot now", busy.seconds) from None
            request = self.http.build_request(
                method,
                self.api_base + path,
                json=json,
                params=params,
                headers={"authorization": f"Bearer {token}"},
            )
            response = await send(self.http, request, what)
            error = error_for(response, what)
            if isinstance(error, Unauthorized) and attempt == 1:
                # HubSpot may revoke a token before its expiry: refresh once, then believe the 401.
                token = (await self.connections.refresh(portal, token)).access_token
                continue
            if isinstance(error, RateLimited):
                await self.pacer.hold(portal, error.retry_after)
            if error is not None:
                raise error
            return body_of(response, what)
        raise AssertionError("unreachable")  # pragma: no cover
