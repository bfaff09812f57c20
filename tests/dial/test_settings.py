"""The [dial] table: per tenant route, allow-list, flags and rate, validated."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.config import ConfigError
from gateway.dial.policy import DialPolicy
from gateway.dial.ratelimit import RateLimit
from gateway.dial.settings import TenantDial, dial_settings


def test_a_tenant_table_gives_its_route_policy_and_rate() -> None:
    table = {
        "100": {
            "route": "twilio",
            "allow": ["+1", "+4930xx"],
            "international": True,
            "premium": False,
            "home_region": "de",
            "max_dials": 5,
            "per_seconds": 30,
        }
    }
    settings = dial_settings({"dial": table}, "US")
    assert settings.for_tenant(100) == TenantDial(
        "twilio", DialPolicy("DE", ("+1", "+4930xx"), True, False), RateLimit(5, 30.0)
    )


def test_defaults_are_home_region_only_no_premium_ten_a_minute() -> None:
    tenant = dial_settings({"dial": {"7": {"route": "sip"}}}, "GB").for_tenant(7)
    assert tenant == TenantDial("sip", DialPolicy(home_region="GB"), RateLimit(10, 60.0))


def test_a_tenant_without_a_table_has_no_route_except_the_demo_in_dev_mode() -> None:
    assert dial_settings({}, "US").for_tenant(100) is None
    dev = dial_settings({}, "US", dev=True).for_tenant(100)
    assert dev is not None and dev.route == "demo"


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ({"abc": {"route": "x"}}, "[dial.abc]: the table name must be the tenant's HubSpot portal id"),
        ({"1": "twilio"}, "[dial.1] must be a table"),
        ({"1": {}}, "[dial.1]: route must name a dialling route"),
        ({"1": {"route": "x", "colour": 1}}, "[dial.1]: unknown keys ['colour']"),
        ({"1": {"route": "x", "allow": ["1212"]}}, "[dial.1]: allow must be a list of E.164 prefixes"),
        ({"1": {"route": "x", "international": "yes"}}, "[dial.1]: international must be true or false"),
        ({"1": {"route": "x", "home_region": "XX"}}, "[dial.1]: home_region 'XX' is not a region code"),
        ({"1": {"route": "x", "max_dials": 0}}, "[dial.1]: max_dials must be a whole number from 1 to 10000"),
        (
            {"1": {"route": "x", "per_seconds": True}},
            "[dial.1]: per_seconds must be a number from 1 to 86400",
        ),
    ],
)
def test_each_mistake_is_named(table: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        dial_settings({"dial": table}, "US")
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems
