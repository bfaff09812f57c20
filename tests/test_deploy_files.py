"""The deploy files name only settings the gateway knows, and parse as YAML."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from gateway.config import PARSERS, load_settings

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
FILES = sorted(p for p in DEPLOY.rglob("*") if p.is_file() and p.name != ".gitignore")


def test_every_gateway_variable_in_deploy_files_is_a_known_setting() -> None:
    # The gateway refuses unknown GATEWAY_* variables at start, so a typo in
    # a manifest would keep every pod from starting.
    named = {m for p in FILES for m in re.findall(r"\bGATEWAY_([A-Z0-9_]+)\b", p.read_text())}
    assert named, "no GATEWAY_* variables found in deploy/"
    assert sorted(n for n in named if n.lower() not in PARSERS and n != "CONFIG") == []


def test_example_environment_is_accepted_by_the_settings_loader() -> None:
    env = dict(
        line.split("=", 1)
        for line in (DEPLOY / "env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    settings = load_settings(env={**env, "GATEWAY_REDIS_URL": "redis://redis:6379/0"})
    assert settings.broker_kind == "redis"


def test_yaml_files_parse() -> None:
    # Catches a broken manifest before a cluster does (PyYAML is a test-only
    # dependency).
    for path in (p for p in FILES if p.suffix == ".yaml"):
        documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        assert documents and all(isinstance(d, dict) for d in documents), path


def _persistent(args: list[str]) -> bool:
    """redis-server arguments that keep what was written across a restart."""
    pairs = dict(zip(args[::2], args[1::2], strict=False))
    return pairs.get("--appendonly") == "yes" and pairs.get("--maxmemory-policy") == "noeviction"


def test_the_compose_redis_keeps_its_data_on_a_volume() -> None:
    # A Redis that restarts empty forgets the calls in progress
    # (docs/operations.md#redis-persistence).
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    redis = compose["services"]["redis"]
    assert redis["command"][0] == "redis-server"
    assert _persistent(redis["command"][1:])
    named = {v.split(":")[0] for v in redis["volumes"] if v.endswith(":/data")}
    assert named and named <= set(compose["volumes"])


def test_the_kubernetes_redis_keeps_its_data_on_a_persistent_volume_claim() -> None:
    documents = list(yaml.safe_load_all((DEPLOY / "kubernetes" / "redis.yaml").read_text()))
    (redis,) = [d for d in documents if d["kind"] == "StatefulSet"]
    (container,) = redis["spec"]["template"]["spec"]["containers"]
    assert _persistent(container["args"])
    claims = {c["metadata"]["name"] for c in redis["spec"]["volumeClaimTemplates"]}
    mounted = {m["name"] for m in container["volumeMounts"] if m["mountPath"] == "/data"}
    assert mounted and mounted <= claims
