"""The ``[ami]`` table of the TOML settings file, validated (pure).

One sub-table per tenant, named by its HubSpot portal id, in the style of
``[sip.pbx.<portal>]``::

    [ami.100]
    host = "pbx.example.com"
    port = 5038               # 5039 is the usual TLS port
    username = "hubspot"
    secret = "..."
    tls = false
    tls_verify = true         # check the PBX's certificate (tls = true)
    auth = "md5"              # "md5" (Challenge, the secret never sent) or "plain"
    dial_context = "from-internal"   # where Originate dials the user's extension and the number
    dial_number = "e164"      # the number as the dialplan expects it: "e164", "digits", "national"
    ring_seconds = 30         # how long the user's phone rings for a click-to-dial
    retry_min_seconds = 1     # back-off between connection attempts ...
    retry_max_seconds = 60    # ... doubling up to this
    ping_seconds = 20         # a Ping unanswered this long drops the connection

docs/pbx.md says what to configure on the PBX for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.config import ConfigError
from gateway.sources.pbxsettings import (
    CONTEXT_NAME,
    Connection,
    dial_number,
    flag,
    ring_seconds,
    tenant_connections,
    text,
)


@dataclass(frozen=True)
class AmiPbx:
    tenant: int
    connection: Connection
    username: str
    secret: str
    tls: bool = False
    tls_verify: bool = True
    auth: str = "md5"
    dial_context: str = "from-internal"
    dial_number: str = "e164"  # how Originate's Exten writes the number: e164, digits, national
    ring_seconds: float = 30.0


def ami_settings(extra: Mapping[str, Any]) -> dict[int, AmiPbx]:
    """The tenants' AMI connections; ``ConfigError`` listing every problem."""
    problems: list[str] = []
    out: dict[int, AmiPbx] = {}
    own = {"username", "secret", "tls", "tls_verify", "auth", "dial_context", "dial_number", "ring_seconds"}
    for tenant, where, table, conn in tenant_connections(extra, "ami", own, 5038, problems):
        auth = table.get("auth", "md5")
        if auth not in ("md5", "plain"):
            problems.append(f'{where}: auth must be "md5" or "plain"')
        context = text(table, "dial_context", where, problems, "from-internal")
        if context and not CONTEXT_NAME.match(context):
            problems.append(f"{where}: dial_context must be a dialplan context name")
        number_form = dial_number(table, where, problems)
        username = text(table, "username", where, problems)
        secret = text(table, "secret", where, problems)
        if conn is None:
            continue
        out[tenant] = AmiPbx(
            tenant=tenant,
            connection=conn,
            username=username,
            secret=secret,
            tls=flag(table, "tls", False, where, problems),
            tls_verify=flag(table, "tls_verify", True, where, problems),
            auth=str(auth),
            dial_context=context,
            dial_number=number_form,
            ring_seconds=ring_seconds(table, where, problems),
        )
    if problems:
        raise ConfigError(problems)
    return out
