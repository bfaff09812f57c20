"""``gateway hubspot settings`` and ``recording-settings`` against the stand-in, as an operator runs them."""

from __future__ import annotations

import json
from pathlib import Path

from gateway.standin.hubspot import HubSpotStandIn
from tests.support.hubspot import run_cli, table, toml_of


def config_for(standin: HubSpotStandIn, standin_url: str, tmp_path: Path, **changes: str) -> Path:
    config = tmp_path / "gateway.toml"
    config.write_text(toml_of({**table(standin, standin_url, tmp_path), **changes}))
    return config


async def test_settings_show_says_when_nothing_is_set(
    standin: HubSpotStandIn, standin_url: str, tmp_path: Path
) -> None:
    code, out, _ = await run_cli(
        "hubspot", "settings", "show", config=config_for(standin, standin_url, tmp_path)
    )
    assert (code, out.strip()) == (0, "nothing set yet")


async def test_settings_set_creates_then_changes_then_marks_ready(
    standin: HubSpotStandIn, standin_url: str, tmp_path: Path
) -> None:
    config = config_for(standin, standin_url, tmp_path)
    code, _, err = await run_cli(
        "hubspot", "settings", "set", "name=Gateway", "url=https://gw.example.com/widget", config=config
    )
    assert code == 0, err
    assert standin.calling_settings is not None
    assert standin.calling_settings["name"] == "Gateway"
    assert standin.calling_settings["isReady"] is False  # the defaults fill a first POST
    code, _, err = await run_cli("hubspot", "settings", "set", "width=500", "usesRemote=true", config=config)
    assert code == 0, err
    assert (standin.calling_settings["width"], standin.calling_settings["usesRemote"]) == (500, True)
    code, out, err = await run_cli("hubspot", "settings", "ready", config=config)
    assert code == 0, err
    assert json.loads(out)["isReady"] is True
    code, out, _ = await run_cli("hubspot", "settings", "show", config=config)
    assert json.loads(out)["url"] == "https://gw.example.com/widget"


async def test_the_settings_requests_carry_the_developer_api_key(
    standin: HubSpotStandIn, standin_url: str, tmp_path: Path
) -> None:
    config = config_for(standin, standin_url, tmp_path, developer_api_key="a-wrong-developer-key")
    code, out, err = await run_cli("hubspot", "settings", "show", config=config)
    assert code == 1 and "HubSpot refused (401" in err
    assert "a-wrong-developer-key" not in out + err


async def test_a_bad_value_is_named(standin: HubSpotStandIn, standin_url: str, tmp_path: Path) -> None:
    config = config_for(standin, standin_url, tmp_path)
    code, _, err = await run_cli("hubspot", "settings", "set", "width=wide", config=config)
    assert code == 2 and "width must be a whole number" in err


async def test_recording_settings_set_and_show(
    standin: HubSpotStandIn, standin_url: str, tmp_path: Path
) -> None:
    config = config_for(standin, standin_url, tmp_path)
    url = "https://gw.example.com/hubspot/recordings/%s"
    code, _, err = await run_cli("hubspot", "recording-settings", "set", url, config=config)
    assert code == 0, err
    code, out, _ = await run_cli("hubspot", "recording-settings", "show", config=config)
    assert json.loads(out)["urlToRetrieveAuthedRecording"] == url


async def test_recording_settings_set_without_a_url_registers_this_gateways(
    standin: HubSpotStandIn, standin_url: str, tmp_path: Path
) -> None:
    config = config_for(standin, standin_url, tmp_path)
    env = {"GATEWAY_PUBLIC_URL": "https://gw.example.com/"}
    code, _, err = await run_cli("hubspot", "recording-settings", "set", config=config, env=env)
    assert code == 0, err
    code, out, _ = await run_cli("hubspot", "recording-settings", "show", config=config)
    assert json.loads(out)["urlToRetrieveAuthedRecording"] == "https://gw.example.com/hubspot/recordings/%s"


async def test_recording_settings_set_without_a_url_or_public_url_says_so(
    standin: HubSpotStandIn, standin_url: str, tmp_path: Path
) -> None:
    config = config_for(standin, standin_url, tmp_path)
    code, _, err = await run_cli(
        "hubspot", "recording-settings", "set", config=config, env={"GATEWAY_PUBLIC_URL": ""}
    )
    assert code == 2 and "GATEWAY_PUBLIC_URL" in err
    assert standin.recording_settings is None


async def test_without_a_hubspot_table_the_command_says_what_is_missing(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text("")
    code, _, err = await run_cli("hubspot", "status", config=config)
    assert code == 2 and "[hubspot]" in err
