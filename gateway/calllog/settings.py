"""The call logger's keys of the ``[hubspot]`` table (pure).

The table belongs to the HubSpot connection as a whole; only these keys are
read here, and the others are left to ``gateway.hubspot``::

    [hubspot]
    log_grace_seconds = 30        # how long after a call ends the widget has to log it
    app_id = 123456               # the HubSpot app's id (hs_call_app_id)
    outbox_file = "var/outbox.sqlite3"   # the embedded default's job store
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.config import ConfigError
from gateway.parsing import parse_decimal

DEFAULT_GRACE_SECONDS = 30.0
DEFAULT_OUTBOX_FILE = Path("var/outbox.sqlite3")


@dataclass(frozen=True)
class CallLogSettings:
    grace_seconds: float = DEFAULT_GRACE_SECONDS
    app_id: str = ""
    outbox_file: Path = DEFAULT_OUTBOX_FILE


def calllog_settings(extra: Mapping[str, Any]) -> CallLogSettings | None:
    """None without a ``[hubspot]`` table: then no call is logged by the gateway."""
    table = extra.get("hubspot")
    if table is None:
        return None
    problems: list[str] = []
    grace = table.get("log_grace_seconds", DEFAULT_GRACE_SECONDS)
    if isinstance(grace, bool) or not isinstance(grace, int | float) or not 0 <= grace <= 3600:
        problems.append("[hubspot]: log_grace_seconds must be a number of seconds from 0 to 3600")
        grace = DEFAULT_GRACE_SECONDS
    app_id = table.get("app_id", "")
    numeric = isinstance(app_id, int | str) and not isinstance(app_id, bool)
    if not numeric or parse_decimal(str(app_id).strip(), 20) is None:
        if app_id != "":
            problems.append("[hubspot]: app_id must be the HubSpot app's numeric id")
        app_id = ""
    outbox_file = table.get("outbox_file", str(DEFAULT_OUTBOX_FILE))
    if not isinstance(outbox_file, str) or not outbox_file.strip():
        problems.append("[hubspot]: outbox_file must be a file path")
        outbox_file = str(DEFAULT_OUTBOX_FILE)
    if problems:
        raise ConfigError(problems)
    return CallLogSettings(float(grace), str(app_id).strip(), Path(outbox_file))
