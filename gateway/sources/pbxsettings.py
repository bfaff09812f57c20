"""What the PBX management connections' settings share (pure): the tenant tables, host, port, timings.

Used by ``[ami.<portal>]`` (``ami/settings.py``) and ``[esl.<portal>]``
(``esl/settings.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from gateway.parsing import parse_decimal

_HOST = re.compile(r"^[A-Za-z0-9.:_-]{1,253}\Z")
# A dialplan or context name (Asterisk's dial_context, FreeSWITCH's dial_dialplan and dial_context).
CONTEXT_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,79}\Z")


@dataclass(frozen=True)
class Connection:
    """How to reach and keep one PBX's management interface (AMI or the event socket)."""

    host: str
    port: int
    retry_min_seconds: float = 1.0
    retry_max_seconds: float = 60.0
    ping_seconds: float = 20.0
    connect_seconds: float = 10.0


def number(
    table: Mapping[str, Any], key: str, default: float, lo: float, hi: float, where: str, problems: list[str]
) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        problems.append(f"{where}: {key} must be a number from {lo:g} to {hi:g}")
        return default
    return float(value)


def connection(
    table: Mapping[str, Any], where: str, default_port: int, problems: list[str]
) -> Connection | None:
    """The keys every PBX connection table has: host, port and the timings."""
    host = table.get("host")
    if not isinstance(host, str) or not _HOST.match(host.strip()):
        problems.append(f"{where}: host must be a host name or address")
        return None
    port = number(table, "port", default_port, 1, 65535, where, problems)
    retry_min = number(table, "retry_min_seconds", 1.0, 0.01, 3600, where, problems)
    retry_max = number(table, "retry_max_seconds", 60.0, 0.01, 86400, where, problems)
    if retry_min > retry_max:
        problems.append(f"{where}: retry_min_seconds must not exceed retry_max_seconds")
    return Connection(
        host=host.strip().strip("[]"),
        port=int(port),
        retry_min_seconds=retry_min,
        retry_max_seconds=retry_max,
        ping_seconds=number(table, "ping_seconds", 20.0, 0.05, 3600, where, problems),
        connect_seconds=number(table, "connect_seconds", 10.0, 0.05, 300, where, problems),
    )


CONNECTION_KEYS = {
    "host",
    "port",
    "retry_min_seconds",
    "retry_max_seconds",
    "ping_seconds",
    "connect_seconds",
}


def tenant_tables(
    extra: Mapping[str, Any], name: str, problems: list[str]
) -> dict[int, tuple[str, dict[str, Any]]]:
    """``[name.<portal>]`` tables by portal id; problems for the rest."""
    table = extra.get(name) or {}
    if not isinstance(table, dict):
        problems.append(f"[{name}] must be a table of [{name}.<portal id>] tables")
        return {}
    out: dict[int, tuple[str, dict[str, Any]]] = {}
    for key, sub in table.items():
        where = f"[{name}.{key}]"
        if not isinstance(sub, dict):
            problems.append(f"{where} must be a table")
        elif parse_decimal(str(key)) is None:
            problems.append(f"{where}: the table name must be the tenant's HubSpot portal id")
        else:
            out[int(str(key))] = (where, sub)
    return out


def tenant_connections(
    extra: Mapping[str, Any], name: str, own_keys: set[str], default_port: int, problems: list[str]
) -> Iterator[tuple[int, str, dict[str, Any], Connection | None]]:
    """Each ``[name.<portal>]`` table with its connection (None when unusable), unknown keys told."""
    for tenant, (where, table) in tenant_tables(extra, name, problems).items():
        unknown = set(table) - (CONNECTION_KEYS | own_keys)
        if unknown:
            problems.append(f"{where}: unknown keys {sorted(unknown)}")
        yield tenant, where, table, connection(table, where, default_port, problems)


def ring_seconds(table: Mapping[str, Any], where: str, problems: list[str]) -> float:
    """How long the user's phone rings for a click-to-dial."""
    return number(table, "ring_seconds", 30.0, 1, 300, where, problems)


# How the dialplan expects the dialled number: +12125550100, 12125550100, or the national digits.
NUMBER_FORMS = ("e164", "digits", "national")


def dial_number(table: Mapping[str, Any], where: str, problems: list[str]) -> str:
    """The form the dialplan expects the dialled number in (``dial_number``, one of ``NUMBER_FORMS``)."""
    value = table.get("dial_number", "e164")
    if value not in NUMBER_FORMS:
        problems.append(f'{where}: dial_number must be "e164", "digits" or "national"')
        return "e164"
    return str(value)


def text(
    table: Mapping[str, Any], key: str, where: str, problems: list[str], default: str | None = None
) -> str:
    value = table.get(key, default)
    if not isinstance(value, str) or not value or any(c in value for c in "\r\n"):
        problems.append(f"{where}: {key} must be a non-empty string on one line")
        return ""
    return value


def flag(table: Mapping[str, Any], key: str, default: bool, where: str, problems: list[str]) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        problems.append(f"{where}: {key} must be true or false")
        return default
    return value
