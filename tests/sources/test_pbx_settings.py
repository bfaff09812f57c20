"""The [ami.<portal>] and [esl.<portal>] tables: what they give, and every problem named at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.config import ConfigError, load_settings
from gateway.sources.ami.settings import AmiPbx, ami_settings
from gateway.sources.esl.settings import EslPbx, esl_settings
from gateway.sources.pbxsettings import Connection


def test_an_ami_table_gives_the_connection_with_its_defaults() -> None:
    got = ami_settings({"ami": {"100": {"host": "pbx.test", "username": "hubspot", "secret": "s3cret"}}})
    assert got == {100: AmiPbx(100, Connection("pbx.test", 5038), "hubspot", "s3cret")}


def test_an_esl_table_gives_the_connection_with_its_defaults() -> None:
    got = esl_settings({"esl": {"7": {"host": "10.0.0.5", "password": "pw"}}})
    assert got == {7: EslPbx(7, Connection("10.0.0.5", 8021), "pw")}


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ({"host": "pbx", "username": "u"}, "[ami.100]: secret must be a non-empty string on one line"),
        (
            {"host": "pbx", "username": "u", "secret": "a\nAction: x"},
            "secret must be a non-empty string on one line",
        ),
        (
            {"host": "pbx", "username": "u", "secret": "s", "port": 70000},
            "port must be a number from 1 to 65535",
        ),
        ({"host": "pbx", "username": "u", "secret": "s", "auth": "sha1"}, 'auth must be "md5" or "plain"'),
        (
            {"host": "pbx", "username": "u", "secret": "s", "dial_context": "a b"},
            "dial_context must be a dialplan",
        ),
        ({"host": "pbx", "username": "u", "secret": "s", "dial_number": "x"}, "dial_number must be"),
        ({"host": "pbx", "username": "u", "secret": "s", "tls": "yes"}, "tls must be true or false"),
        ({"host": "pbx", "username": "u", "secret": "s", "colour": 1}, "unknown keys ['colour']"),
        ({"host": "bad host!", "username": "u", "secret": "s"}, "host must be a host name or address"),
        (
            {"host": "pbx", "username": "u", "secret": "s", "retry_min_seconds": 9, "retry_max_seconds": 2},
            "retry_min_seconds must not exceed retry_max_seconds",
        ),
    ],
)
def test_a_bad_ami_table_is_refused_naming_the_problem(table: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        ami_settings({"ami": {"100": table}})
    assert any(problem in p for p in caught.value.problems), caught.value.problems


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ({"host": "fs"}, "password must be a non-empty string"),
        ({"host": "fs", "password": "two words"}, "password must not hold spaces"),
        (
            {"host": "fs", "password": "p", "dial_endpoint": "user/1001"},
            "dial_endpoint must be a dial string",
        ),
        (
            {"host": "fs", "password": "p", "dial_context": "x;y"},
            "dial_context must be a dialplan or context name",
        ),
        ({"host": "fs", "password": "p", "dial_number": "local"}, "dial_number must be"),
    ],
)
def test_a_bad_esl_table_is_refused_naming_the_problem(table: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        esl_settings({"esl": {"100": table}})
    assert any(problem in p for p in caught.value.problems), caught.value.problems


def test_a_table_name_that_is_no_portal_id_is_refused() -> None:
    with pytest.raises(
        ConfigError, match=r"\[esl.main\]: the table name must be the tenant's HubSpot portal id"
    ):
        esl_settings({"esl": {"main": {"host": "fs", "password": "p"}}})


def test_the_settings_file_accepts_ami_and_esl_tables(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(
        '[ami.100]\nhost = "pbx"\nusername = "u"\nsecret = "s"\n[esl.200]\nhost = "fs"\npassword = "p"\n'
    )
    settings = load_settings({"GATEWAY_CONFIG": str(path)})
    assert (list(ami_settings(settings.extra)), list(esl_settings(settings.extra))) == ([100], [200])
