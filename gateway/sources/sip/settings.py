"""The ``[sip]`` table of the TOML settings file, validated.

An absent or empty table (or one without ``listen``) means SIP is off.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.config import ConfigError
from gateway.parsing import parse_decimal
from gateway.sources.sip.message_rules import Limits
from gateway.sources.sip.message_transport import ListenAddress
from gateway.sources.sip.transactions import Timers

_LISTEN = re.compile(r"^(udp|tcp):(?:\[([0-9A-Fa-f:.]+)\]|([^:\[\]]+)):([0-9]{1,5})\Z", re.IGNORECASE)
_HOSTPORT = re.compile(r"^(?:\[([0-9A-Fa-f:.]+)\]|([^:\[\]]+))(?::([0-9]{1,5}))?\Z")


@dataclass(frozen=True)
class PbxSettings:
    """Where one tenant's PBX is and how the gateway subscribes to it."""

    tenant: int
    host: str
    port: int = 5060
    transport: str = "udp"
    domain: str = ""
    username: str = "gateway"
    password: str = ""
    expires: int = 600
    # Click-to-dial (docs/dialling.md): how long the user's own phone may ring.
    ring_seconds: float = 30.0


@dataclass(frozen=True)
class SipSettings:
    listen: tuple[ListenAddress, ...]
    advertise: str = ""
    limits: Limits = field(default_factory=Limits)
    timers: Timers = field(default_factory=Timers)
    retry_min_seconds: float = 1.0
    retry_max_seconds: float = 300.0
    publish: bool = True
    # Shorter PUBLISH intervals get 423, except for a document that ends a dialog.
    publish_min_expires: int = 60
    publish_max_expires: int = 3600
    # Sources allowed to PUBLISH; empty means PUBLISH is off (PUBLISH carries no
    # credentials of its own, so the network is its only authentication).
    transaction_cache_bytes: int = 64 * 1024 * 1024  # answers kept for retransmissions, at most
    publish_from: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    pbx: Mapping[int, PbxSettings] = field(default_factory=dict)
    # Several instances on one Redis share the AORs (docs/scaling.md): each says
    # it is alive and renews its leases this often; a silent one's AORs move
    # to the others once this TTL has run out.
    owner_heartbeat_seconds: float = 1.0
    owner_ttl_seconds: float = 5.0


def parse_listen(raw: str) -> ListenAddress:
    match = _LISTEN.match(raw.strip())
    if not match:
        raise ValueError(f"{raw!r} is not like udp:0.0.0.0:5060 or tcp:[::]:5060")
    kind, v6, host, port = match.groups()
    if not 0 <= int(port) <= 65535:
        raise ValueError(f"{raw!r}: port out of range")
    return ListenAddress(kind.lower(), v6 or host, int(port))


def _pbx(tenant: str, table: Any, problems: list[str]) -> PbxSettings | None:
    where = f"[sip.pbx.{tenant}]"
    if not isinstance(table, dict):
        problems.append(f"{where} must be a table")
        return None
    if parse_decimal(tenant) is None:
        problems.append(f"{where}: the table name must be the tenant's HubSpot portal id")
        return None
    unknown = set(table) - {
        "address", "transport", "domain", "username", "password", "expires", "ring_seconds",
    }  # fmt: skip
    if unknown:
        problems.append(f"{where}: unknown keys {sorted(unknown)}")
    match = _HOSTPORT.match(str(table.get("address", "")))
    if not match:
        problems.append(f"{where}: address must be host or host:port")
        return None
    v6, host, port = match.groups()
    transport = str(table.get("transport", "udp")).lower()
    if transport not in ("udp", "tcp"):
        problems.append(f"{where}: transport must be udp or tcp")
    expires = table.get("expires", 600)
    if not isinstance(expires, int) or not 1 <= expires <= 86400:
        problems.append(f"{where}: expires must be 1..86400 seconds")
        expires = 600
    ring = table.get("ring_seconds", 30)
    if isinstance(ring, bool) or not isinstance(ring, int | float) or not 1 <= ring <= 300:
        problems.append(f"{where}: ring_seconds must be a number from 1 to 300")
        ring = 30
    return PbxSettings(
        tenant=int(tenant),
        host=v6 or host,
        port=int(port or 5060),
        transport=transport,
        domain=str(table.get("domain", "")),
        username=str(table.get("username", "gateway")),
        password=str(table.get("password", "")),
        expires=expires,
        ring_seconds=float(ring),
    )


def _number(
    table: Mapping[str, Any], key: str, default: float, lo: float, hi: float, problems: list[str]
) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        problems.append(f"[sip] {key} must be a number from {lo} to {hi}")
        return default
    return float(value)


def _networks(raw: Any, problems: list[str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        problems.append("[sip] publish_from must be a list of addresses or CIDR networks")
        return ()
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for item in raw:
        try:
            networks.append(ipaddress.ip_network(str(item).strip(), strict=False))
        except ValueError:
            problems.append(f"[sip] publish_from: {item!r} is not an address or CIDR network")
    return tuple(networks)


def sip_settings(extra: Mapping[str, Any]) -> SipSettings | None:
    table = extra.get("sip")
    if not table or not table.get("listen"):
        return None
    problems: list[str] = []
    known = {
        "listen", "advertise", "max_message_bytes", "max_headers", "tcp_message_seconds", "t1_seconds",
        "retry_min_seconds", "retry_max_seconds", "publish", "publish_min_expires", "publish_max_expires",
        "pbx", "publish_from", "tcp_idle_seconds", "tcp_connections_per_source", "transaction_cache_bytes",
        "owner_heartbeat_seconds", "owner_ttl_seconds",
    }  # fmt: skip
    unknown = set(table) - known
    if unknown:
        problems.append(f"[sip]: unknown keys {sorted(unknown)}")
    listen: list[ListenAddress] = []
    raw_listen = table["listen"]
    for raw in [raw_listen] if isinstance(raw_listen, str) else raw_listen:
        try:
            listen.append(parse_listen(str(raw)))
        except ValueError as exc:
            problems.append(f"[sip] listen: {exc}")
    pbx: dict[int, PbxSettings] = {}
    for tenant, pbx_table in (table.get("pbx") or {}).items():
        parsed = _pbx(str(tenant), pbx_table, problems)
        if parsed is not None:
            pbx[parsed.tenant] = parsed
            if not any(a.kind == parsed.transport for a in listen):
                problems.append(f"[sip.pbx.{tenant}]: needs a {parsed.transport} listen address")
    limits = Limits(
        max_message_bytes=int(_number(table, "max_message_bytes", 65_535, 1024, 1 << 20, problems)),
        max_headers=int(_number(table, "max_headers", 128, 16, 1024, problems)),
        tcp_message_seconds=_number(table, "tcp_message_seconds", 10.0, 0.05, 300, problems),
        tcp_idle_seconds=_number(table, "tcp_idle_seconds", 300.0, 0.05, 86400, problems),
        tcp_connections_per_source=int(_number(table, "tcp_connections_per_source", 32, 1, 1024, problems)),
    )
    settings = SipSettings(
        listen=tuple(listen),
        advertise=str(table.get("advertise", "")),
        limits=limits,
        timers=Timers(t1=_number(table, "t1_seconds", 0.5, 0.01, 5, problems)),
        retry_min_seconds=_number(table, "retry_min_seconds", 1.0, 0.01, 3600, problems),
        retry_max_seconds=_number(table, "retry_max_seconds", 300.0, 0.01, 86400, problems),
        publish=bool(table.get("publish", True)),
        publish_min_expires=int(_number(table, "publish_min_expires", 60, 1, 3600, problems)),
        publish_max_expires=int(_number(table, "publish_max_expires", 3600, 60, 86400, problems)),
        pbx=pbx,
        transaction_cache_bytes=int(
            _number(table, "transaction_cache_bytes", 64 * 1024 * 1024, 1 << 20, 1 << 32, problems)
        ),
        publish_from=_networks(table.get("publish_from", []), problems),
        owner_heartbeat_seconds=_number(table, "owner_heartbeat_seconds", 1.0, 0.05, 60, problems),
        owner_ttl_seconds=_number(table, "owner_ttl_seconds", 5.0, 0.15, 600, problems),
    )
    if settings.owner_ttl_seconds < 3 * settings.owner_heartbeat_seconds:
        # Two heartbeats may be missed (a slow Redis, a GC pause) before a live instance loses its AORs.
        problems.append("[sip] owner_ttl_seconds must be at least 3 times owner_heartbeat_seconds")
    if settings.publish_min_expires > settings.publish_max_expires:
        problems.append("[sip] publish_min_expires must not exceed publish_max_expires")
    if problems:
        raise ConfigError(problems)
    return settings
