"""HubSpot's OAuth 2.0 authorization code flow: the authorize URL, the token endpoint.

The v3 endpoints (``/oauth/v3/token``, ``/oauth/v3/token/introspect``):
HubSpot deprecates v1 on 16 February 2027, and v3 takes the client secret
and the tokens in the form body only, never in a URL that could be logged
(docs/hubspot.md#oauth). A code exchange or refresh refused as
``invalid_grant`` (or with a 401 other than ``invalid_client``) means the
grant is gone: ``Unauthorized``; the caller marks the portal broken.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import httpx

from gateway.hubspot.errors import HubSpotError, Rejected, Transient, Unauthorized
from gateway.hubspot.settings import HubSpotSettings
from gateway.hubspot.tokens import TokenGrant

TOKEN_PATH = "/oauth/v3/token"  # noqa: S105 (a path, not a secret)
INTROSPECT_PATH = "/oauth/v3/token/introspect"
AUTHORIZE_PATH = "/oauth/authorize"
# HubSpot's answers for a refresh token that no longer works (v3: OAuth's
# error code; v1 said it in ``status``).
_GONE = {"invalid_grant", "BAD_REFRESH_TOKEN", "BAD_AUTH_CODE"}


class OAuth:
    def __init__(self, settings: HubSpotSettings, http: httpx.AsyncClient) -> None:
        self._settings = settings
        self._http = http

    def authorize_url(self, redirect_uri: str, state: str) -> str:
        query = urlencode(
            {
                "client_id": self._settings.client_id,
                "redirect_uri": redirect_uri,
                "scope": " ".join(self._settings.scopes),
                "state": state,
            }
        )
        return f"{self._settings.auth_base}{AUTHORIZE_PATH}?{query}"

    async def exchange(self, code: str, redirect_uri: str) -> TokenGrant:
        return _grant(
            await self._post(
                TOKEN_PATH, {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
            )
        )

    async def refresh(self, refresh_token: str) -> TokenGrant:
        return _grant(
            await self._post(TOKEN_PATH, {"grant_type": "refresh_token", "refresh_token": refresh_token})
        )

    async def portal_of(self, access_token: str) -> int:
        """The portal (hub id) a token belongs to, from the introspection endpoint."""
        info = await self._post(INTROSPECT_PATH, {"token": access_token, "token_type_hint": "access_token"})
        hub = info.get("hub_id")
        if not isinstance(hub, int) or isinstance(hub, bool) or not info.get("active", True):
            raise Rejected("HubSpot's token introspection named no portal")
        return hub

    async def _post(self, path: str, form: dict[str, str]) -> dict[str, Any]:
        body = {"client_id": self._settings.client_id, "client_secret": self._settings.client_secret, **form}
        try:
            response = await self._http.post(self._settings.api_base + path, data=body)
        except httpx.TimeoutException:
            raise Transient("HubSpot's token endpoint did not answer in time") from None
        except httpx.HTTPError as exc:
            raise Transient(f"HubSpot's token endpoint could not be reached ({type(exc).__name__})") from None
        try:
            answer: Any = response.json()
        except ValueError:
            answer = None
        if response.status_code >= 500:
            raise Transient(f"HubSpot's token endpoint failed ({response.status_code})")
        if response.status_code >= 300 or not isinstance(answer, dict):
            raise _refusal(response.status_code, answer)
        return answer


def _refusal(status: int, answer: Any) -> HubSpotError:
    said = answer if isinstance(answer, dict) else {}
    code = str(said.get("error") or said.get("status") or "")
    message = str(said.get("error_description") or said.get("message") or "")[:200]
    text = f"HubSpot refused the token request ({status} {code}{': ' + message if message else ''})"
    # invalid_client: the gateway's own credentials are wrong (a rotated
    # secret); the portals' grants are fine, so it does not break them.
    if code != "invalid_client" and (status == 401 or code in _GONE):
        return Unauthorized(text)
    return Rejected(text)


def _grant(answer: dict[str, Any]) -> TokenGrant:
    try:
        scopes = answer.get("scopes") or str(answer.get("scope", "")).split()
        hub = answer.get("hub_id")
        return TokenGrant(
            access_token=str(answer["access_token"]),
            refresh_token=str(answer.get("refresh_token", "")),
            expires_in=float(answer["expires_in"]),
            hub_id=hub if isinstance(hub, int) and not isinstance(hub, bool) else None,
            scopes=tuple(str(s) for s in scopes),
        )
    except (KeyError, TypeError, ValueError):
        raise Rejected("HubSpot's token answer lacks access_token or expires_in") from None
