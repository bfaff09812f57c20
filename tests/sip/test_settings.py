"""The [sip] settings table: off when absent, every problem reported at once."""

from __future__ import annotations

import pytest

from gateway.config import ConfigError
from gateway.sources.sip.message_transport import ListenAddress
from gateway.sources.sip.settings import sip_settings


def test_sip_is_off_without_a_table_or_listen_addresses() -> None:
    assert sip_settings({}) is None
    assert sip_settings({"sip": {"pbx": {}}}) is None


def test_listen_addresses_of_both_families_are_parsed() -> None:
    settings = sip_settings({"sip": {"listen": ["udp:0.0.0.0:5060", "tcp:[::]:5061"]}})
    assert settings is not None
    assert settings.listen == (ListenAddress("udp", "0.0.0.0", 5060), ListenAddress("tcp", "::", 5061))


def test_a_tenant_pbx_table_is_read() -> None:
    table = {
        "listen": ["udp:127.0.0.1:5060"],
        "pbx": {
            "100": {"address": "pbx.example.com:5070", "username": "gw", "password": "pw", "expires": 300}
        },
    }
    settings = sip_settings({"sip": table})
    assert settings is not None
    pbx = settings.pbx[100]
    assert (pbx.host, pbx.port, pbx.transport, pbx.username, pbx.expires) == (
        "pbx.example.com",
        5070,
        "udp",
        "gw",
        300,
    )


def test_every_problem_is_reported_at_once() -> None:
    table = {
        "listen": ["udp:nowhere", "sctp:1.2.3.4:5060"],
        "lisen": True,
        "pbx": {"acme": {"address": "x"}, "100": {"address": "pbx:5060", "transport": "tcp", "expires": 0}},
    }
    with pytest.raises(ConfigError) as raised:
        sip_settings({"sip": table})
    text = "\n".join(raised.value.problems)
    assert "udp:nowhere" in text
    assert "sctp:1.2.3.4:5060" in text
    assert "unknown keys ['lisen']" in text
    assert "portal id" in text
    assert "expires must be" in text
    assert "needs a tcp listen address" in text


def test_publish_from_takes_addresses_and_networks_of_both_families() -> None:
    table = {"listen": ["udp:127.0.0.1:5060"], "publish_from": ["127.0.0.1", "10.0.0.0/8", "fd00::/8"]}
    settings = sip_settings({"sip": table})
    assert settings is not None
    assert [str(n) for n in settings.publish_from] == ["127.0.0.1/32", "10.0.0.0/8", "fd00::/8"]


def test_a_bad_publish_from_entry_is_reported() -> None:
    with pytest.raises(ConfigError) as raised:
        sip_settings({"sip": {"listen": ["udp:127.0.0.1:5060"], "publish_from": ["10.0.0.0/33"]}})
    assert "publish_from: '10.0.0.0/33'" in "\n".join(raised.value.problems)


def test_tcp_idle_and_per_source_caps_are_read_with_defaults() -> None:
    default = sip_settings({"sip": {"listen": ["tcp:127.0.0.1:5060"]}})
    assert default is not None
    assert (default.limits.tcp_idle_seconds, default.limits.tcp_connections_per_source) == (300.0, 32)
    table = {"listen": ["tcp:127.0.0.1:5060"], "tcp_idle_seconds": 120, "tcp_connections_per_source": 4}
    settings = sip_settings({"sip": table})
    assert settings is not None
    assert (settings.limits.tcp_idle_seconds, settings.limits.tcp_connections_per_source) == (120.0, 4)


def test_the_publish_minimum_interval_is_read_with_a_default() -> None:
    default = sip_settings({"sip": {"listen": ["udp:127.0.0.1:5060"]}})
    assert default is not None and default.publish_min_expires == 60
    settings = sip_settings({"sip": {"listen": ["udp:127.0.0.1:5060"], "publish_min_expires": 10}})
    assert settings is not None and settings.publish_min_expires == 10


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"publish_min_expires": 0}, "publish_min_expires must be a number from 1 to 3600"),
        ({"publish_min_expires": "soon"}, "publish_min_expires must be a number"),
        ({"publish_min_expires": 600, "publish_max_expires": 300}, "must not exceed publish_max_expires"),
    ],
)
def test_a_bad_publish_minimum_interval_is_reported(extra: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigError) as raised:
        sip_settings({"sip": {"listen": ["udp:127.0.0.1:5060"], **extra}})
    assert problem in "\n".join(raised.value.problems)


@pytest.mark.parametrize("name", ["\u00b2", "\u0661\u0660\u0660"])
def test_a_pbx_table_named_with_non_ascii_digits_is_reported_not_raised(name: str) -> None:
    with pytest.raises(ConfigError) as raised:
        sip_settings({"sip": {"listen": ["udp:127.0.0.1:5060"], "pbx": {name: {"address": "pbx:5060"}}}})
    assert any("portal id" in problem for problem in raised.value.problems)


@pytest.mark.parametrize(
    "listen", ["udp:127.0.0.1:\u0665\u0660\u0666\u0660", "tcp:127.0.0.1:\uff15\uff10\uff16\uff10"]
)
def test_a_listen_port_in_non_ascii_digits_is_reported(listen: str) -> None:
    with pytest.raises(ConfigError) as raised:
        sip_settings({"sip": {"listen": [listen]}})
    assert listen in "\n".join(raised.value.problems)


def test_the_ownership_timings_default_to_a_heartbeat_a_second_and_five_seconds_to_take_over() -> None:
    settings = sip_settings({"sip": {"listen": ["udp:127.0.0.1:5060"]}})
    assert settings is not None
    assert (settings.owner_heartbeat_seconds, settings.owner_ttl_seconds) == (1.0, 5.0)


def test_an_ownership_ttl_shorter_than_three_heartbeats_is_refused() -> None:
    table = {"listen": ["udp:127.0.0.1:5060"], "owner_heartbeat_seconds": 1, "owner_ttl_seconds": 2.9}
    with pytest.raises(ConfigError) as raised:
        sip_settings({"sip": table})
    assert raised.value.problems == [
        "[sip] owner_ttl_seconds must be at least 3 times owner_heartbeat_seconds"
    ]
