"""The [recordings] table (the HubSpot client secret is tests/hubspot/test_settings.py's)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.config import ConfigError
from gateway.recordings.settings import PbxRecordings, recording_settings


def test_a_tenants_pbx_template_makes_the_url_of_a_call() -> None:
    table = {
        "100": {"url_template": "https://pbx.example/rec/{call_id}.wav", "username": "u", "password": "p"}
    }
    pbx = recording_settings({"recordings": table}).pbx[100]
    assert pbx.url_for("sip:a1b2@10.0.0.1") == "https://pbx.example/rec/a1b2%4010.0.0.1.wav"
    assert (pbx.username, pbx.password) == ("u", "p")


def test_the_password_is_not_in_the_settings_repr() -> None:
    assert "secret-pw" not in repr(PbxRecordings("https://pbx/{call_id}", "u", "secret-pw"))


def test_defaults_without_a_table() -> None:
    settings = recording_settings({})
    assert (settings.link_seconds, settings.keep_seconds, dict(settings.pbx)) == (300, 7 * 86400, {})


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ({"100": {"url_template": "ftp://pbx/{call_id}"}}, "url_template must be an http(s) URL"),
        ({"100": {"url_template": "https://pbx/{uniqueid}"}}, "may name only"),
        ({"100": {"url_template": "https://pbx/{call_id}", "pasword": "x"}}, "unknown keys"),
        ({"acme": {}}, "named by its portal id"),
        ({"link_seconds": 5}, "link_seconds"),
    ],
)
def test_every_problem_is_reported(table: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as error:
        recording_settings({"recordings": table})
    assert any(problem in p for p in error.value.problems), error.value.problems
