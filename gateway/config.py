"""Settings from the environment (``GATEWAY_*``) and an optional TOML file.

Everything is validated at start-up, and every problem is reported at once
with the variable's name, so a misconfigured deployment fails loudly before
it accepts a single connection.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

DEFAULT_FRAME_ANCESTORS = (
    "https://app.hubspot.com",
    "https://app-eu1.hubspot.com",
    "https://app-na2.hubspot.com",
)


class ConfigError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    redis_url: str | None = None
    users_file: Path = Path("var/users.json")
    secret: str = ""
    ingest_secret: str = ""
    # The operator page /admin (docs/operations.md#the-operator-page); unset: off.
    admin_token: str = field(default="", repr=False)
    public_url: str = ""
    default_region: str = "US"
    frame_ancestors: tuple[str, ...] = DEFAULT_FRAME_ANCESTORS
    history_size: int = 500
    stream_buffer: int = 256
    heartbeat_seconds: float = 15.0
    retry_ms: int = 2000
    call_ttl_seconds: int = 86400
    token_ttl_seconds: int = 900
    ticket_ttl_seconds: int = 60
    replay_window_seconds: int = 300
    max_body_bytes: int = 65536
    key_prefix: str = "gw"
    forwarded_allow_ips: str = "127.0.0.1"
    users_reload_seconds: float = 2.0
    streams_per_user: int = 16
    web_dir: Path = Path(__file__).resolve().parent.parent / "web"
    dev: bool = False
    # The iframe page (issue 4): where the page loads the SDK's ES module
    # from; empty means the copy the gateway serves from web/node_modules.
    sdk_url: str = ""
    # Collector pacing for `gateway serve` (gateway/gcpacer.py); 0 turns it off.
    gc_freeze_seconds: float = 0.1
    gc_full_seconds: float = 3600.0
    extra: Mapping[str, Any] = field(default_factory=dict)
    # CPaaS webhooks (gateway/sources/webhooks): a provider's endpoint is
    # enabled by setting its key.
    twilio_auth_token: str = ""
    telnyx_public_key: str = ""
    vonage_signature_secret: str = ""
    # CPaaS dialling routes (gateway/dial, docs/dialling.md): a route is
    # offered when its credentials are set. The API URLs are the providers'
    # own unless a test points them elsewhere.
    twilio_account_sid: str = ""
    twilio_api_url: str = "https://api.twilio.com"
    telnyx_api_key: str = ""
    telnyx_connection_id: str = ""
    telnyx_api_url: str = "https://api.telnyx.com"
    vonage_application_id: str = ""
    vonage_private_key_file: Path | None = None
    vonage_api_url: str = "https://api.nexmo.com"
    dial_api_timeout_seconds: float = 10.0
    # The HubSpot app's secrets (gateway/hubspot/settings.py; the rest is in [hubspot]).
    hubspot_client_secret: str = field(default="", repr=False)
    hubspot_token_key: str = field(default="", repr=False)
    hubspot_developer_api_key: str = field(default="", repr=False)
    # The page's wrap-up (docs/page.md#wrap-up): how long after a call ends
    # the page waits for notes and an outcome before it logs the call as it
    # is, and the portal's own call outcomes (GUID=Label;GUID=Label), empty
    # for HubSpot's default set.
    wrap_up_seconds: int = 120
    call_dispositions: tuple[tuple[str, str], ...] = ()

    @property
    def broker_kind(self) -> str:
        return "redis" if self.redis_url else "memory"


N = TypeVar("N", int, float)


def _ranged(kind: Callable[[str], N], lo: N, hi: N) -> Callable[[str], N]:
    def parse(raw: str) -> N:
        value = kind(raw)
        if not lo <= value <= hi:
            raise ValueError(f"must be between {lo} and {hi}")
        return value

    return parse


def _int(lo: int, hi: int) -> Callable[[str], int]:
    return _ranged(int, lo, hi)


def _float(lo: float, hi: float) -> Callable[[str], float]:
    return _ranged(float, lo, hi)


def _bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be true or false")


def _redis_url(raw: str) -> str | None:
    if not raw:
        return None
    scheme = urlsplit(raw).scheme
    if scheme not in ("redis", "rediss", "unix", "redis+sentinel", "redis+cluster"):
        raise ValueError(
            "must start with redis://, rediss://, unix://, redis+sentinel:// or redis+cluster://"
        )
    if scheme in ("redis+sentinel", "redis+cluster"):
        redis_nodes(raw)
    if scheme == "redis+sentinel":
        service, _, db = urlsplit(raw).path.strip("/").partition("/")
        if not service or not (db == "" or (db.isascii() and db.isdigit())):
            raise ValueError("must be redis+sentinel://host:port,.../<service>[/<db>]")
    return raw


def redis_nodes(url: str) -> list[tuple[str, int]]:
    """The host:port pairs of a redis+sentinel:// (the sentinels) or redis+cluster:// URL (seed nodes)."""
    nodes: list[tuple[str, int]] = []
    for part in urlsplit(url).netloc.rpartition("@")[2].split(","):
        host, sep, port = part.rpartition(":")
        if not sep or not host or not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
            raise ValueError("the nodes must be host:port, separated by commas")
        nodes.append((host.strip("[]"), int(port)))
    return nodes


def sentinel_service(url: str) -> tuple[str, int]:
    """A redis+sentinel:// URL's service name and database number (path /<service>[/<db>])."""
    service, _, db = urlsplit(url).path.strip("/").partition("/")
    return service, int(db) if db.isascii() and db.isdigit() else 0


def _origins(raw: str) -> tuple[str, ...]:
    origins = tuple(part for part in raw.replace(",", " ").split() if part)
    for origin in origins:
        if origin == "*" or not urlsplit(origin).scheme:
            raise ValueError(f"{origin!r} is not an origin like https://app.hubspot.com")
    return origins


def _url(raw: str) -> str:
    if raw and urlsplit(raw).scheme not in ("http", "https"):
        raise ValueError("must be an http(s) URL")
    return raw.rstrip("/")


def _region(raw: str) -> str:
    if len(raw) != 2 or not raw.isalpha():
        raise ValueError("must be a two-letter region code such as US or DE")
    return raw.upper()


def _secret(raw: str) -> str:
    if raw and len(raw) < 16:
        raise ValueError("must be at least 16 characters")
    return raw


def _admin_token(raw: str) -> str:
    if raw and len(raw) < 24:
        raise ValueError("must be at least 24 characters (it is the operator page's only credential)")
    return raw


PARSERS: dict[str, Callable[[str], Any]] = {
    "host": str,
    "port": _int(0, 65535),
    "redis_url": _redis_url,
    "users_file": Path,
    "secret": _secret,
    "ingest_secret": _secret,
    "admin_token": _admin_token,
    "public_url": _url,
    "default_region": _region,
    "frame_ancestors": _origins,
    "history_size": _int(10, 100_000),
    "stream_buffer": _int(8, 100_000),
    "heartbeat_seconds": _float(0.05, 300),
    "retry_ms": _int(100, 600_000),
    "call_ttl_seconds": _int(60, 30 * 86400),
    "token_ttl_seconds": _int(60, 86400),
    "ticket_ttl_seconds": _int(5, 600),
    "replay_window_seconds": _int(10, 3600),
    "max_body_bytes": _int(1024, 10 * 1024 * 1024),
    "key_prefix": str,
    "forwarded_allow_ips": str.strip,
    "users_reload_seconds": _float(0.05, 3600),
    "streams_per_user": _int(1, 1000),
    "web_dir": Path,
    "dev": _bool,
    "sdk_url": _url,
    # collector pacing
    "gc_freeze_seconds": _float(0, 3600),
    "gc_full_seconds": _float(10, 7 * 86400),
}


def _ed25519_public_key(raw: str) -> str:
    # Imported here so the webhook settings stay one appended block.
    import base64
    import binascii

    if not raw:
        return raw
    try:
        key = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be the base64 public key from the Telnyx portal") from None
    if len(key) != 32:
        raise ValueError(f"must decode to a 32-byte Ed25519 key, not {len(key)} bytes")
    return raw.strip()


PARSERS.update(
    {
        "twilio_auth_token": str.strip,
        "telnyx_public_key": _ed25519_public_key,
        "vonage_signature_secret": str.strip,
    }
)


def _twilio_account_sid(raw: str) -> str:
    raw = raw.strip()
    if raw and not (raw.startswith("AC") and len(raw) == 34):
        raise ValueError("must be the account's SID: AC followed by 32 characters")
    return raw


def _private_key_file(raw: str) -> Path | None:
    if not raw.strip():
        return None
    path = Path(raw.strip())
    if not path.is_file():
        raise ValueError("must name a readable file holding the application's private key (PEM)")
    return path


PARSERS.update(
    {
        "twilio_account_sid": _twilio_account_sid,
        "twilio_api_url": _url,
        "telnyx_api_key": str.strip,
        "telnyx_connection_id": str.strip,
        "telnyx_api_url": _url,
        "vonage_application_id": str.strip,
        "vonage_private_key_file": _private_key_file,
        "vonage_api_url": _url,
        "dial_api_timeout_seconds": _float(0.1, 120),
    }
)

PARSERS.update(
    {
        "hubspot_client_secret": str.strip,
        "hubspot_token_key": str.strip,
        "hubspot_developer_api_key": str.strip,
    }
)


def _dispositions(raw: str) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for part in raw.split(";"):
        if not part.strip():
            continue
        guid, sep, label = part.partition("=")
        guid, label = guid.strip(), label.strip()
        if not sep or not label or not _GUID.fullmatch(guid):
            raise ValueError(f"{part.strip()!r} is not GUID=Label (an outcome's internal value, its name)")
        out.append((guid.lower(), label))
    return tuple(out)


_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

PARSERS.update({"wrap_up_seconds": _int(1, 3600), "call_dispositions": _dispositions})

# A dialling route needs its webhooks back: (its settings, all or none; what else it needs).
DIAL_ROUTE_SETTINGS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "twilio": (("twilio_account_sid",), ("twilio_auth_token", "public_url")),
    "telnyx": (("telnyx_api_key", "telnyx_connection_id"), ("telnyx_public_key", "public_url")),
    "vonage": (
        ("vonage_application_id", "vonage_private_key_file"),
        ("vonage_signature_secret", "public_url"),
    ),
}


def _dial_route_problems(settings: Settings) -> list[str]:
    problems = []
    for route, (own, needs) in DIAL_ROUTE_SETTINGS.items():
        given = [name for name in own if getattr(settings, name)]
        if not given:
            continue
        missing = [name for name in own + needs if not getattr(settings, name)]
        if missing:
            names = ", ".join(f"GATEWAY_{name.upper()}" for name in missing)
            problems.append(f"the {route} dialling route is half configured: set {names} too")
    return problems


# TOML tables a source reads from ``Settings.extra``.
TABLES = {"sip", "dial", "hubspot", "recordings", "ami", "esl"}


def load_settings(
    env: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Settings from a TOML file (``GATEWAY_CONFIG``), then the environment.

    Unknown ``GATEWAY_*`` names and unknown file keys are errors: a typo in
    a variable name should not silently fall back to a default. A TOML table
    (``[sip]``, ``[twilio]`` …) is kept whole in ``extra`` for the source that
    owns it.
    """
    env = os.environ if env is None else env
    raw: dict[str, str] = {}
    extra: dict[str, Any] = {}
    problems: list[str] = []
    config_file = env.get("GATEWAY_CONFIG")
    if config_file:
        try:
            data = tomllib.loads(Path(config_file).read_text("utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError([f"GATEWAY_CONFIG={config_file}: {exc}"]) from None
        for key, value in data.items():
            if isinstance(value, dict):
                if key in TABLES:
                    extra[key] = value
                else:
                    problems.append(f"{config_file}: unknown table [{key}]")
            elif key in PARSERS:
                raw[key] = " ".join(map(str, value)) if isinstance(value, list) else str(value)
            else:
                problems.append(f"{config_file}: unknown setting {key!r}")
    for name, value in env.items():
        if not name.startswith("GATEWAY_") or name == "GATEWAY_CONFIG":
            continue
        key = name.removeprefix("GATEWAY_").lower()
        if key in PARSERS:
            raw[key] = value
        else:
            problems.append(f"{name}: unknown setting")
    values: dict[str, Any] = {}
    for key, text in raw.items():
        try:
            values[key] = PARSERS[key](text)
        except ValueError as exc:
            problems.append(f"GATEWAY_{key.upper()}={text!r}: {exc}")
    values.update(overrides or {})
    settings = Settings(**values, extra=extra)
    if settings.redis_url and not settings.secret:
        problems.append(
            "GATEWAY_SECRET: required with GATEWAY_REDIS_URL, so that every instance "
            "accepts the tokens the others issue"
        )
    problems.extend(_dial_route_problems(settings))
    if problems:
        raise ConfigError(problems)
    return settings


def setting_names() -> list[str]:
    return [f.name for f in fields(Settings) if f.name != "extra"]
