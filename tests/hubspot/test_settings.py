"""The ``[hubspot]`` table: validated, its secrets from the environment, every problem reported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.config import ConfigError, Settings, load_settings
from gateway.hubspot.settings import API_BASE, AUTH_BASE, SCOPES, client_secret, hubspot_settings

GOOD = {"app_id": 42, "client_id": "abc", "client_secret": "s" * 20, "token_key": "k" * 20}


def problems(table: Any, secrets: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        hubspot_settings({"hubspot": table}, secrets or {})
    return caught.value.problems


def test_no_table_no_hubspot() -> None:
    assert hubspot_settings({}, {}) is None


def test_a_table_of_the_call_loggers_keys_only_is_no_connection() -> None:
    assert hubspot_settings({"hubspot": {"app_id": 42, "log_grace_seconds": 5}}, {}) is None


def test_a_secret_in_the_environment_asks_for_the_rest() -> None:
    found = problems({"app_id": 42}, {"client_secret": "s" * 20})
    assert any("client_id is required" in p for p in found)


def test_the_defaults_are_hubspots_own() -> None:
    settings = hubspot_settings({"hubspot": GOOD}, {})
    assert settings is not None
    assert (settings.api_base, settings.auth_base, settings.scopes) == (API_BASE, AUTH_BASE, SCOPES)
    assert {"crm.objects.contacts.write", "timeline"} <= set(settings.scopes)


def test_secrets_from_the_environment_win_over_the_file() -> None:
    settings = hubspot_settings({"hubspot": GOOD}, {"client_secret": "from-the-environment"})
    assert settings is not None and settings.client_secret == "from-the-environment"


def test_the_secrets_stay_out_of_the_repr() -> None:
    settings = hubspot_settings({"hubspot": {**GOOD, "developer_api_key": "dev-key-123"}}, {})
    assert (
        "s" * 20 not in repr(settings) and "k" * 20 not in repr(settings) and "dev-key" not in repr(settings)
    )


def test_every_problem_is_reported_at_once() -> None:
    found = problems({"app_id": "x", "api_base": "ftp://x", "scopes": [], "surprise": 1})
    assert len(found) == 7, found
    joined = "\n".join(found)
    for words in (
        "app_id",
        "client_id",
        "GATEWAY_HUBSPOT_CLIENT_SECRET",
        "GATEWAY_HUBSPOT_TOKEN_KEY",
        "api_base",
    ):
        assert words in joined
    assert "surprise" in joined and "scopes" in joined


def test_a_short_token_key_is_refused() -> None:
    assert problems({**GOOD, "token_key": "short"}) == [
        "[hubspot]: the token encryption key must be at least 16 characters: set GATEWAY_HUBSPOT_TOKEN_KEY"
    ]


def test_the_settings_file_table_and_the_environment_reach_it(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('[hubspot]\napp_id = 42\nclient_id = "abc"\n')
    env = {
        "GATEWAY_CONFIG": str(config),
        "GATEWAY_HUBSPOT_CLIENT_SECRET": "secret-from-env-0123",
        "GATEWAY_HUBSPOT_TOKEN_KEY": "key-from-env-0123456",
    }
    settings = load_settings(env)
    assert "secret-from-env" not in repr(settings)
    hubspot = hubspot_settings(
        settings.extra,
        {"client_secret": settings.hubspot_client_secret, "token_key": settings.hubspot_token_key},
    )
    assert hubspot is not None and hubspot.client_secret == "secret-from-env-0123"


def test_the_client_secret_alone_follows_the_same_rule_the_environment_first(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('[hubspot]\nclient_secret = "from-the-table"\n')
    settings = load_settings({"GATEWAY_CONFIG": str(config), "GATEWAY_HUBSPOT_CLIENT_SECRET": "from-env"})
    assert client_secret(settings) == "from-env"


def test_the_client_secret_alone_comes_from_the_table_without_the_environment() -> None:
    settings = Settings(extra={"hubspot": {"client_secret": " from-the-table "}})
    assert client_secret(settings) == "from-the-table"


def test_the_client_secret_alone_needs_no_hubspot_table() -> None:
    assert client_secret(Settings(hubspot_client_secret="from-env")) == "from-env"
    assert client_secret(Settings()) == ""
