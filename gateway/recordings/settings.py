"""The ``[recordings]`` table of the TOML settings file, validated (pure).

::

    [recordings]
    link_seconds = 300        # how long a media link HubSpot is given works
    keep_seconds = 604800     # how long a call's recording location is kept

    [recordings.100]          # a tenant (HubSpot portal id) whose PBX keeps recordings
    url_template = "https://pbx.example/rec/{call_id}.wav"
    username = "hubspot"      # optional HTTP basic auth of the PBX's web server
    password = "..."
    content_type = "audio/wav"  # optional: what the PBX serves, when it does not say

``{call_id}`` is the call id of the gateway's call key (after ``source:``),
for SIP the dialog's Call-ID, percent-encoded; ``{call_key}`` is the whole key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from gateway.config import ConfigError
from gateway.parsing import parse_decimal

_TOP_KEYS = {"link_seconds", "keep_seconds"}
_TENANT_KEYS = {"url_template", "username", "password", "content_type"}


@dataclass(frozen=True)
class PbxRecordings:
    """Where a tenant's PBX serves the recording of a call."""

    url_template: str
    username: str = ""
    password: str = field(default="", repr=False)
    content_type: str = "audio/wav"

    def url_for(self, call_key: str) -> str:
        _, _, call_id = call_key.partition(":")
        return self.url_template.format(call_id=quote(call_id, safe=""), call_key=quote(call_key, safe=""))


@dataclass(frozen=True)
class RecordingSettings:
    link_seconds: int = 300
    keep_seconds: int = 7 * 86400
    pbx: Mapping[int, PbxRecordings] = field(default_factory=dict)


def _seconds(table: Mapping[str, Any], key: str, default: int, lo: int, hi: int, problems: list[str]) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        problems.append(f"[recordings]: {key} must be a whole number of seconds from {lo} to {hi}")
        return default
    return value


def _tenant(name: str, table: Any, problems: list[str]) -> PbxRecordings | None:
    where = f"[recordings.{name}]"
    if not isinstance(table, dict):
        problems.append(f"{where} must be a table")
        return None
    unknown = sorted(set(table) - _TENANT_KEYS)
    if unknown:
        problems.append(f"{where}: unknown keys {unknown}")
    template = table.get("url_template")
    if not isinstance(template, str) or urlsplit(template).scheme not in ("http", "https"):
        problems.append(f"{where}: url_template must be an http(s) URL")
        return None
    try:
        PbxRecordings(template).url_for("sip:probe")
    except (KeyError, IndexError, ValueError):
        problems.append(f"{where}: url_template may name only {{call_id}} and {{call_key}}")
        return None
    texts = {}
    for key in ("username", "password", "content_type"):
        value = table.get(key, "")
        if not isinstance(value, str):
            problems.append(f"{where}: {key} must be a string")
            value = ""
        texts[key] = value
    return PbxRecordings(template, texts["username"], texts["password"], texts["content_type"] or "audio/wav")


def recording_settings(extra: Mapping[str, Any]) -> RecordingSettings:
    """The ``[recordings]`` table; ``ConfigError`` listing every problem."""
    table = extra.get("recordings", {})
    problems: list[str] = []
    if not isinstance(table, dict):
        raise ConfigError(["[recordings] must be a table"])
    pbx: dict[int, PbxRecordings] = {}
    for key, value in table.items():
        if key in _TOP_KEYS:
            continue
        portal = parse_decimal(key, 12)
        if portal is None:
            problems.append(f"[recordings]: unknown key {key!r} (a tenant's table is named by its portal id)")
            continue
        tenant = _tenant(key, value, problems)
        if tenant is not None:
            pbx[portal] = tenant
    settings = RecordingSettings(
        link_seconds=_seconds(table, "link_seconds", 300, 30, 3600, problems),
        keep_seconds=_seconds(table, "keep_seconds", 7 * 86400, 3600, 90 * 86400, problems),
        pbx=pbx,
    )
    if problems:
        raise ConfigError(problems)
    return settings
