"""The ``[esl]`` table of the TOML settings file, validated (pure).

One sub-table per tenant, named by its HubSpot portal id::

    [esl.100]
    host = "fs.example.com"
    port = 8021
    password = "..."          # event_socket.conf.xml's password
    dial_endpoint = "user/{extension}"   # how originate rings the user's phone
    dial_dialplan = "XML"     # where the number is dialled once the phone answers ...
    dial_context = "default"  # ... (the dialplan and context of the user's own calls)
    dial_number = "e164"      # the number as the dialplan expects it: "e164", "digits", "national"
    ring_seconds = 30
    retry_min_seconds = 1
    retry_max_seconds = 60
    ping_seconds = 20

The event socket has no TLS of its own: keep it on the switch's host or a
private network (docs/pbx.md#freeswitch).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.config import ConfigError
from gateway.sources.pbxsettings import (
    CONTEXT_NAME,
    Connection,
    dial_number,
    ring_seconds,
    tenant_connections,
    text,
)

_ENDPOINT = re.compile(r"^[A-Za-z0-9_./@%${}:-]{1,200}\Z")


@dataclass(frozen=True)
class EslPbx:
    tenant: int
    connection: Connection
    password: str
    dial_endpoint: str = "user/{extension}"
    dial_dialplan: str = "XML"
    dial_context: str = "default"
    dial_number: str = "e164"  # how originate writes the number: e164, digits, national
    ring_seconds: float = 30.0


def esl_settings(extra: Mapping[str, Any]) -> dict[int, EslPbx]:
    problems: list[str] = []
    out: dict[int, EslPbx] = {}
    own = {"password", "dial_endpoint", "dial_dialplan", "dial_context", "dial_number", "ring_seconds"}
    for tenant, where, table, conn in tenant_connections(extra, "esl", own, 8021, problems):
        password = text(table, "password", where, problems)
        if any(c.isspace() for c in password):
            problems.append(f"{where}: password must not hold spaces")
        endpoint = text(table, "dial_endpoint", where, problems, "user/{extension}")
        if endpoint and ("{extension}" not in endpoint or not _ENDPOINT.match(endpoint)):
            problems.append(
                f'{where}: dial_endpoint must be a dial string with {{extension}}, like "user/{{extension}}"'
            )
        dialplan = text(table, "dial_dialplan", where, problems, "XML")
        context = text(table, "dial_context", where, problems, "default")
        for key, value in (("dial_dialplan", dialplan), ("dial_context", context)):
            if value and not CONTEXT_NAME.match(value):
                problems.append(f"{where}: {key} must be a dialplan or context name")
        number_form = dial_number(table, where, problems)
        if conn is None:
            continue
        out[tenant] = EslPbx(
            tenant=tenant,
            connection=conn,
            password=password,
            dial_endpoint=endpoint,
            dial_dialplan=dialplan,
            dial_context=context,
            dial_number=number_form,
            ring_seconds=ring_seconds(table, where, problems),
        )
    if problems:
        raise ConfigError(problems)
    return out
