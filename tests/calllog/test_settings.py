"""The call logger's keys of the [hubspot] table."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.calllog.settings import (
    DEFAULT_GRACE_SECONDS,
    DEFAULT_OUTBOX_FILE,
    CallLogSettings,
    calllog_settings,
)
from gateway.config import ConfigError, load_settings


def test_without_a_hubspot_table_calls_are_not_logged_by_the_gateway() -> None:
    assert calllog_settings({}) is None


def test_an_empty_hubspot_table_takes_the_defaults() -> None:
    assert calllog_settings({"hubspot": {}}) == CallLogSettings(
        DEFAULT_GRACE_SECONDS, "", DEFAULT_OUTBOX_FILE
    )


def test_the_grace_period_app_id_and_file_are_read() -> None:
    table = {"log_grace_seconds": 5, "app_id": 4242, "outbox_file": "/data/outbox.db", "client_id": "x"}
    assert calllog_settings({"hubspot": table}) == CallLogSettings(5.0, "4242", Path("/data/outbox.db"))


@pytest.mark.parametrize("grace", [-1, 3601, "30", True])
def test_a_grace_period_out_of_range_or_not_a_number_is_a_problem(grace: object) -> None:
    with pytest.raises(ConfigError, match="log_grace_seconds"):
        calllog_settings({"hubspot": {"log_grace_seconds": grace}})


def test_an_app_id_that_is_not_a_number_is_a_problem() -> None:
    with pytest.raises(ConfigError, match="app_id"):
        calllog_settings({"hubspot": {"app_id": "my-app"}})


def test_an_app_id_in_other_digits_than_ascii_is_a_problem() -> None:
    # Written as hs_call_app_id, which HubSpot compares with the app's id.
    with pytest.raises(ConfigError, match="app_id"):
        calllog_settings({"hubspot": {"app_id": "\u0664\u0662\u0664\u0662"}})


def test_the_settings_file_accepts_a_hubspot_table(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text("[hubspot]\nlog_grace_seconds = 10\n")
    assert load_settings({"GATEWAY_CONFIG": str(config)}).extra["hubspot"] == {"log_grace_seconds": 10}
