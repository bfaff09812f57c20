"""The ``[dial]`` table of the TOML settings file, validated (pure).

One sub-table per tenant, named by its HubSpot portal id::

    [dial.100]
    route = "twilio"          # a registered route's name
    allow = ["+1"]            # E.164 prefixes ("x" = any digit); absent: any number
    international = false     # numbers outside home_region
    premium = false           # premium-rate numbers
    home_region = "US"        # default: GATEWAY_DEFAULT_REGION
    max_dials = 10            # per user ...
    per_seconds = 60          # ... in this sliding window

A tenant without a table cannot dial (404), except in dev mode, where it
uses the demo route with the defaults above.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import phonenumbers

from gateway.config import ConfigError
from gateway.dial.policy import DialPolicy, allow_entry_valid
from gateway.dial.ratelimit import RateLimit
from gateway.parsing import parse_decimal

_KEYS = {"route", "allow", "international", "premium", "home_region", "max_dials", "per_seconds"}


@dataclass(frozen=True)
class TenantDial:
    route: str
    policy: DialPolicy = field(default_factory=DialPolicy)
    rate: RateLimit = field(default_factory=RateLimit)


@dataclass(frozen=True)
class DialSettings:
    tenants: Mapping[int, TenantDial] = field(default_factory=dict)
    # The route of a tenant without a table (dev mode: "demo"); None: none.
    fallback: TenantDial | None = None

    def for_tenant(self, tenant: int) -> TenantDial | None:
        return self.tenants.get(tenant, self.fallback)


def _flag(table: Mapping[str, Any], key: str, where: str, problems: list[str]) -> bool:
    value = table.get(key, False)
    if not isinstance(value, bool):
        problems.append(f"{where}: {key} must be true or false")
        return False
    return value


def _tenant(name: str, table: Any, default_region: str, problems: list[str]) -> TenantDial | None:
    where = f"[dial.{name}]"
    if not isinstance(table, dict):
        problems.append(f"{where} must be a table")
        return None
    if parse_decimal(name) is None:
        problems.append(f"{where}: the table name must be the tenant's HubSpot portal id")
        return None
    unknown = set(table) - _KEYS
    if unknown:
        problems.append(f"{where}: unknown keys {sorted(unknown)}")
    route = table.get("route")
    if not isinstance(route, str) or not route.strip():
        problems.append(f"{where}: route must name a dialling route")
        return None
    allow = table.get("allow", [])
    if isinstance(allow, str):
        allow = [allow]
    if not isinstance(allow, list) or not all(isinstance(a, str) and allow_entry_valid(a) for a in allow):
        problems.append(f'{where}: allow must be a list of E.164 prefixes like "+1" or "+4930xx"')
        allow = []
    region = str(table.get("home_region", default_region)).upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        problems.append(f"{where}: home_region {region!r} is not a region code like US or DE")
        region = default_region
    dials = table.get("max_dials", 10)
    if isinstance(dials, bool) or not isinstance(dials, int) or not 1 <= dials <= 10_000:
        problems.append(f"{where}: max_dials must be a whole number from 1 to 10000")
        dials = 10
    seconds = table.get("per_seconds", 60)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 1 <= seconds <= 86_400:
        problems.append(f"{where}: per_seconds must be a number from 1 to 86400")
        seconds = 60
    policy = DialPolicy(
        home_region=region,
        allow=tuple(allow),
        international=_flag(table, "international", where, problems),
        premium=_flag(table, "premium", where, problems),
    )
    return TenantDial(route=route.strip(), policy=policy, rate=RateLimit(dials, float(seconds)))


def dial_settings(extra: Mapping[str, Any], default_region: str, dev: bool = False) -> DialSettings:
    table = extra.get("dial") or {}
    problems: list[str] = []
    if not isinstance(table, dict):
        raise ConfigError(["[dial] must be a table of [dial.<portal id>] tables"])
    tenants: dict[int, TenantDial] = {}
    for name, sub in table.items():
        parsed = _tenant(str(name), sub, default_region, problems)
        if parsed is not None:
            tenants[int(name)] = parsed
    if problems:
        raise ConfigError(problems)
    fallback = TenantDial("demo", DialPolicy(home_region=default_region)) if dev else None
    return DialSettings(tenants=tenants, fallback=fallback)
