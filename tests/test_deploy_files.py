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
