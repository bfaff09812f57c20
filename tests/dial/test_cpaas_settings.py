"""A CPaaS route's settings: all of them or none, and a start that names what is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.assemble import build_gateway
from gateway.config import ConfigError, load_settings
from tests.support.harness import make_settings


def test_a_half_configured_route_stops_the_start_naming_what_to_set() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"GATEWAY_TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "GATEWAY_TELNYX_API_KEY": "KEY1"})
    assert caught.value.problems == [
        "the twilio dialling route is half configured: set GATEWAY_TWILIO_AUTH_TOKEN, GATEWAY_PUBLIC_URL too",
        "the telnyx dialling route is half configured: set GATEWAY_TELNYX_CONNECTION_ID, "
        "GATEWAY_TELNYX_PUBLIC_KEY, GATEWAY_PUBLIC_URL too",
    ]


def test_an_account_sid_that_is_not_one_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"GATEWAY_TWILIO_ACCOUNT_SID": "not-a-sid"})
    assert caught.value.problems[0].startswith(
        "GATEWAY_TWILIO_ACCOUNT_SID='not-a-sid': must be the account's SID"
    )


def test_a_private_key_file_that_holds_no_key_stops_the_start(tmp_path: Path) -> None:
    path = tmp_path / "private.key"
    path.write_text("not a key")
    settings = make_settings(
        tmp_path,
        public_url="https://gateway.example.com",
        vonage_signature_secret="s" * 20,
        vonage_application_id="app",
        vonage_private_key_file=path,
    )
    with pytest.raises(ConfigError) as caught:
        build_gateway(settings)
    assert caught.value.problems == [
        f"GATEWAY_VONAGE_PRIVATE_KEY_FILE={path}: not a PEM private key (ValueError)"
    ]


def test_the_routes_are_offered_only_when_configured(tmp_path: Path) -> None:
    assert list(build_gateway(make_settings(tmp_path)).dialling.routes) == []
