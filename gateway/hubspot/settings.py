"""The ``[hubspot]`` table of the TOML settings file, validated (pure).

::

    [hubspot]
    app_id = 1234567               # the app's id (developer account: Apps)
    client_id = "…"                # the app's Auth tab
    # client_secret, token_key and developer_api_key are secrets: set them
    # with GATEWAY_HUBSPOT_CLIENT_SECRET, GATEWAY_HUBSPOT_TOKEN_KEY and
    # GATEWAY_HUBSPOT_DEVELOPER_API_KEY (the table may hold them too).
    scopes = ["crm.objects.contacts.read", …]   # default: SCOPES
    api_base = "https://api.hubapi.com"
    auth_base = "https://app.hubspot.com"
    tokens_file = "var/hubspot-tokens.json"     # without GATEWAY_REDIS_URL
    timeout_seconds = 10
    refresh_margin_seconds = 300   # refresh this long before a token expires

Without the table, or with only the call logger's keys and ``app_id``,
the gateway has no HubSpot connection of its own (in dev mode it uses the
stand-in, see ``gateway.standin``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gateway.config import ConfigError, Settings

# What a calling app needs (docs/hubspot.md#scopes): contacts read/write
# (calls are engagements under the contacts scopes; caller-ID search),
# companies read (a number that belongs to a company), owners read (the
# call's owner), timeline (HubSpot's calling docs ask for it).
SCOPES = (
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "crm.objects.companies.read",
    "crm.objects.owners.read",
    "timeline",
)
API_BASE = "https://api.hubapi.com"
AUTH_BASE = "https://app.hubspot.com"

_KEYS = {
    "app_id",
    "client_id",
    "client_secret",
    "developer_api_key",
    "token_key",
    "scopes",
    "api_base",
    "auth_base",
    "tokens_file",
    "timeout_seconds",
    "refresh_margin_seconds",
    # The call logger's (gateway/calllog/settings.py).
    "log_grace_seconds",
    "outbox_file",
}
# Keys that mean "this gateway has its own HubSpot app connection".
_CONNECTION_KEYS = _KEYS - {"app_id", "log_grace_seconds", "outbox_file"}
# Secrets the environment may give instead of the file; the environment wins.
ENV_SECRETS = {
    "client_secret": "GATEWAY_HUBSPOT_CLIENT_SECRET",
    "token_key": "GATEWAY_HUBSPOT_TOKEN_KEY",
    "developer_api_key": "GATEWAY_HUBSPOT_DEVELOPER_API_KEY",
}


@dataclass(frozen=True)
class HubSpotSettings:
    app_id: int
    client_id: str
    client_secret: str = field(repr=False)
    token_key: str = field(repr=False)
    developer_api_key: str = field(default="", repr=False)
    scopes: tuple[str, ...] = SCOPES
    api_base: str = API_BASE
    auth_base: str = AUTH_BASE
    tokens_file: Path = Path("var/hubspot-tokens.json")
    timeout_seconds: float = 10.0
    refresh_margin_seconds: float = 300.0


def _url(table: Mapping[str, Any], key: str, default: str, problems: list[str]) -> str:
    value = table.get(key, default)
    if not isinstance(value, str) or urlsplit(value).scheme not in ("http", "https"):
        problems.append(f"[hubspot]: {key} must be an http(s) URL")
        return default
    return value.rstrip("/")


def _number(
    table: Mapping[str, Any], key: str, default: float, lo: float, hi: float, problems: list[str]
) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        problems.append(f"[hubspot]: {key} must be a number from {lo:g} to {hi:g}")
        return default
    return float(value)


def _text(table: Mapping[str, Any], key: str, problems: list[str]) -> str:
    value = table.get(key, "")
    if not isinstance(value, str):
        problems.append(f"[hubspot]: {key} must be a string")
        return ""
    return value.strip()


def _secret(table: Mapping[str, Any], secrets: Mapping[str, str], key: str, problems: list[str]) -> str:
    """One of ``ENV_SECRETS``: the environment's, else the table's (docs/hubspot.md#configure-the-gateway)."""
    return secrets.get(key) or _text(table, key, problems)


def client_secret(settings: Settings) -> str:
    """The app's client secret by the rule ``hubspot_settings`` applies, "" without one.

    Recordings check HubSpot's ``X-HubSpot-Signature-v3`` with it, also on a
    gateway with no HubSpot connection of its own (no ``[hubspot]`` table).
    Problems in the table are ``hubspot_settings``'s to report at start-up.
    """
    table = settings.extra.get("hubspot")
    secrets = {"client_secret": settings.hubspot_client_secret}
    return _secret(table if isinstance(table, dict) else {}, secrets, "client_secret", [])


def hubspot_settings(extra: Mapping[str, Any], secrets: Mapping[str, str]) -> HubSpotSettings | None:
    """The validated table, or None without one; ``secrets`` by key from the environment win."""
    table = extra.get("hubspot")
    if table is None:
        return None
    if not isinstance(table, dict):
        raise ConfigError(["[hubspot] must be a table"])
    if not (set(table) & _CONNECTION_KEYS) and not any(secrets.get(key) for key in ENV_SECRETS):
        # Only the call logger's keys (and app_id): the gateway has no OAuth app of its own
        # (a test gives the call logger its HubSpot directly).
        return None
    problems: list[str] = []
    unknown = set(table) - _KEYS
    if unknown:
        problems.append(f"[hubspot]: unknown keys {sorted(unknown)}")
    app_id = table.get("app_id")
    if isinstance(app_id, bool) or not isinstance(app_id, int) or app_id <= 0:
        problems.append("[hubspot]: app_id must be the app's id, a positive whole number")
        app_id = 0
    client_id = _text(table, "client_id", problems)
    if not client_id:
        problems.append("[hubspot]: client_id is required (the app's Auth tab)")
    given = {key: _secret(table, secrets, key, problems) for key in ENV_SECRETS}
    if not given["client_secret"]:
        problems.append("[hubspot]: the client secret is required: set GATEWAY_HUBSPOT_CLIENT_SECRET")
    if len(given["token_key"]) < 16:
        problems.append(
            "[hubspot]: the token encryption key must be at least 16 characters: "
            "set GATEWAY_HUBSPOT_TOKEN_KEY"
        )
    scopes = table.get("scopes", list(SCOPES))
    if isinstance(scopes, str):
        scopes = scopes.split()
    if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) and s for s in scopes):
        problems.append("[hubspot]: scopes must be a list of HubSpot scope names")
        scopes = list(SCOPES)
    tokens_file = table.get("tokens_file", "var/hubspot-tokens.json")
    if not isinstance(tokens_file, str) or not tokens_file:
        problems.append("[hubspot]: tokens_file must be a path")
        tokens_file = "var/hubspot-tokens.json"
    settings = HubSpotSettings(
        app_id=app_id,
        client_id=client_id,
        client_secret=given["client_secret"],
        token_key=given["token_key"],
        developer_api_key=given["developer_api_key"],
        scopes=tuple(scopes),
        api_base=_url(table, "api_base", API_BASE, problems),
        auth_base=_url(table, "auth_base", AUTH_BASE, problems),
        tokens_file=Path(tokens_file),
        timeout_seconds=_number(table, "timeout_seconds", 10.0, 0.1, 120, problems),
        refresh_margin_seconds=_number(table, "refresh_margin_seconds", 300.0, 0, 3600, problems),
    )
    if problems:
        raise ConfigError(problems)
    return settings
