"""Configuration: environment and file, validated at start with clear messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, load_settings


def test_defaults_need_no_configuration() -> None:
    settings = load_settings({})
    assert settings.broker_kind == "memory"
    assert settings.host == "127.0.0.1"
    assert "https://app.hubspot.com" in settings.frame_ancestors


def test_environment_values_are_parsed() -> None:
    settings = load_settings(
        {
            "GATEWAY_PORT": "9000",
            "GATEWAY_REDIS_URL": "redis://127.0.0.1:6379/0",
            "GATEWAY_SECRET": "s" * 32,
            "GATEWAY_FRAME_ANCESTORS": "https://a.example, https://b.example",
        }
    )
    assert settings.port == 9000
    assert settings.broker_kind == "redis"
    assert settings.frame_ancestors == ("https://a.example", "https://b.example")


def test_every_problem_is_reported_at_once_with_its_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"GATEWAY_PORT": "70000", "GATEWAY_REDIS_URL": "http://x", "GATEWAY_PROT": "1"})
    problems = "\n".join(caught.value.problems)
    assert "GATEWAY_PORT='70000': must be between 0 and 65535" in problems
    assert "GATEWAY_REDIS_URL='http://x': must start with redis://" in problems
    assert "GATEWAY_PROT: unknown setting" in problems


def test_redis_without_a_shared_secret_is_refused() -> None:
    with pytest.raises(ConfigError, match="GATEWAY_SECRET: required with GATEWAY_REDIS_URL"):
        load_settings({"GATEWAY_REDIS_URL": "redis://127.0.0.1:6379/0"})


def test_a_wildcard_frame_ancestor_is_refused() -> None:
    with pytest.raises(ConfigError, match="is not an origin"):
        load_settings({"GATEWAY_FRAME_ANCESTORS": "*"})


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ConfigError, match="at least 16 characters"):
        load_settings({"GATEWAY_INGEST_SECRET": "short"})


def test_a_toml_file_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text('port = 8081\nhost = "0.0.0.0"\n[sip]\nlisten = ["udp:127.0.0.1:5060"]\n')
    settings = load_settings({"GATEWAY_CONFIG": str(path), "GATEWAY_PORT": "8082"})
    assert settings.port == 8082
    assert settings.host == "0.0.0.0"
    assert settings.extra["sip"] == {"listen": ["udp:127.0.0.1:5060"]}


def test_unknown_tables_and_ill_typed_values_in_the_file_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text("port = [1, 2]\n[bogus]\nx = 1\n")
    with pytest.raises(ConfigError) as caught:
        load_settings({"GATEWAY_CONFIG": str(path)})
    problems = "\n".join(caught.value.problems)
    assert "unknown table [bogus]" in problems
    assert "GATEWAY_PORT='1 2'" in problems


def test_unknown_keys_in_the_file_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text("prot = 1\n")
    with pytest.raises(ConfigError, match="unknown setting 'prot'"):
        load_settings({"GATEWAY_CONFIG": str(path)})


def test_a_broken_file_is_reported_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text("port = \n")
    with pytest.raises(ConfigError, match=r"gateway\.toml"):
        load_settings({"GATEWAY_CONFIG": str(path)})


def test_sentinel_and_cluster_urls_name_their_nodes() -> None:
    env = {"GATEWAY_SECRET": "s" * 32}
    for url in ("redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/gw/2", "redis+cluster://10.0.0.1:7000"):
        assert load_settings(env={**env, "GATEWAY_REDIS_URL": url}).redis_url == url
    for url, problem in (
        ("redis+sentinel://10.0.0.1:26379", "<service>"),
        ("redis+sentinel://10.0.0.1/gw", "host:port"),
        ("redis+cluster://10.0.0.1:7000,10.0.0.2:x", "host:port"),
    ):
        with pytest.raises(ConfigError, match=problem):
            load_settings(env={**env, "GATEWAY_REDIS_URL": url})
