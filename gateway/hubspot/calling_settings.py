"""The app's calling settings and recording settings at HubSpot (per app, not per portal).

``/crm/extensions/calling/2026-03/{appId}/settings`` and its
``/settings/recording``. HubSpot's reference for the 2026-03 endpoints
authorizes them with the developer account's API key in the ``hapikey``
query parameter (not an OAuth token): that is what is sent here
(docs/hubspot.md#calling-settings). The older path
``/crm/v3/extensions/calling/{appId}/settings`` takes the same bodies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from gateway.hubspot.client import body_of, error_for, send
from gateway.hubspot.errors import Rejected

PATH = "/crm/extensions/calling/2026-03/{app_id}/settings"
LEGACY_PATH = "/crm/v3/extensions/calling/{app_id}/settings"

# name: its JSON type. POST needs them all; PATCH any subset.
FIELDS: dict[str, type] = {
    "name": str,
    "url": str,
    "width": int,
    "height": int,
    "isReady": bool,
    "supportsCustomObjects": bool,
    "supportsInboundCalling": bool,
    "usesCallingWindow": bool,
    "usesRemote": bool,
}
RECORDING_FIELDS: dict[str, type] = {"urlToRetrieveAuthedRecording": str}
# What a first POST sends for the fields the operator did not give.
DEFAULTS: dict[str, Any] = {
    "width": 400,
    "height": 600,
    "isReady": False,
    "supportsCustomObjects": False,
    "supportsInboundCalling": True,
    "usesCallingWindow": True,
    "usesRemote": False,
}


def parse_assignments(pairs: list[str], fields: Mapping[str, type]) -> dict[str, Any]:
    """``["width=400", "isReady=true"]`` as typed JSON values; ValueError names the bad one."""
    values: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or name not in fields:
            raise ValueError(f"{pair!r}: expected one of {', '.join(fields)} as name=value")
        kind = fields[name]
        if kind is bool:
            if raw.lower() not in ("true", "false"):
                raise ValueError(f"{name} must be true or false")
            values[name] = raw.lower() == "true"
        elif kind is int:
            if not raw.isascii() or not raw.isdigit():
                raise ValueError(f"{name} must be a whole number")
            values[name] = int(raw)
        else:
            values[name] = raw
    return values


class CallingSettings:
    def __init__(self, api_base: str, app_id: int, developer_api_key: str, http: httpx.AsyncClient) -> None:
        self._base = api_base + PATH.format(app_id=app_id)
        self._key = developer_api_key
        self._http = http

    def __repr__(self) -> str:
        return f"CallingSettings({self._base!r}, <key>)"

    async def _request(self, method: str, suffix: str, body: Any = None, missing_ok: bool = False) -> Any:
        what = f"{method} calling settings{suffix}"
        if not self._key:
            raise Rejected(f"{what}: set GATEWAY_HUBSPOT_DEVELOPER_API_KEY (HubSpot's reference asks for it)")
        request = self._http.build_request(
            method, self._base + suffix, json=body, params={"hapikey": self._key}
        )
        response = await send(self._http, request, what)
        if missing_ok and response.status_code == 404:
            return None
        error = error_for(response, what)
        if error is not None:
            raise error
        return body_of(response, what)

    async def show(self) -> dict[str, Any] | None:
        """The settings now, or None when none were ever set (404)."""
        answer = await self._request("GET", "", missing_ok=True)
        return answer if isinstance(answer, dict) else None

    async def set(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Creates the settings (missing fields from DEFAULTS) or changes the given fields."""
        if await self.show() is None:
            missing = {"name", "url"} - set(values)
            if missing:
                raise Rejected(f"the first settings need {' and '.join(sorted(missing))}")
            answer = await self._request("POST", "", {**DEFAULTS, **values})
        else:
            answer = await self._request("PATCH", "", dict(values))
        return answer if isinstance(answer, dict) else {}

    async def ready(self) -> dict[str, Any]:
        return await self.set({"isReady": True})

    async def show_recording(self) -> dict[str, Any] | None:
        answer = await self._request("GET", "/recording", missing_ok=True)
        return answer if isinstance(answer, dict) else None

    async def set_recording(self, url: str) -> dict[str, Any]:
        body = {"urlToRetrieveAuthedRecording": url}
        method = "POST" if await self.show_recording() is None else "PATCH"
        answer = await self._request(method, "/recording", body)
        return answer if isinstance(answer, dict) else {}
