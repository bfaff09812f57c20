"""The HubSpot stand-in on a loopback port, and the gateway's HubSpot pieces pointed at it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import uvicorn

from gateway.assemble import build_app, build_gateway
from gateway.calllog.settings import DEFAULT_GRACE_SECONDS
from gateway.http.server import server_config
from gateway.hubspot.cipher import TokenCipher
from gateway.hubspot.ratelimit import Pacer
from gateway.hubspot.service import HubSpotService
from gateway.hubspot.settings import HubSpotSettings
from gateway.hubspot.store import FileTokenStore
from gateway.standin.dev import DEMO_PORTAL, MOUNT
from gateway.standin.hubspot import HubSpotStandIn
from tests.support.harness import Client, make_settings
from tests.support.harness import test_users as harness_users
from tests.support.servers import free_port, serve, write_users

TOKEN_KEY = "token-key-for-tests-0123456789"
PORTAL = 100


@contextlib.asynccontextmanager
async def serving(standin: HubSpotStandIn) -> AsyncIterator[str]:
    config = uvicorn.Config(standin.app(), host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the HubSpot stand-in stopped during start-up")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


def table(standin: HubSpotStandIn, base_url: str, tmp: Path, **extra: Any) -> dict[str, Any]:
    """A ``[hubspot]`` table for the stand-in (secrets included, as the file may hold them)."""
    return {
        "app_id": standin.app_id,
        "client_id": standin.client_id,
        "client_secret": standin.client_secret,
        "developer_api_key": standin.developer_api_key,
        "token_key": TOKEN_KEY,
        "api_base": base_url,
        "auth_base": base_url,
        "tokens_file": str(tmp / "hubspot-tokens.json"),
        **extra,
    }


def settings_for(standin: HubSpotStandIn, base_url: str, tmp: Path, **changes: Any) -> HubSpotSettings:
    values: dict[str, Any] = {
        "app_id": standin.app_id,
        "client_id": standin.client_id,
        "client_secret": standin.client_secret,
        "developer_api_key": standin.developer_api_key,
        "token_key": TOKEN_KEY,
        "api_base": base_url,
        "auth_base": base_url,
        "tokens_file": tmp / "hubspot-tokens.json",
        "timeout_seconds": 2.0,
        **changes,
    }
    return HubSpotSettings(**values)


@contextlib.asynccontextmanager
async def running_service(
    settings: HubSpotSettings, pacer: Pacer | None = None
) -> AsyncIterator[HubSpotService]:
    service = HubSpotService(
        settings, FileTokenStore(settings.tokens_file, TokenCipher(settings.token_key)), pacer
    )
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


def toml_of(values: dict[str, Any]) -> str:
    lines = ["[hubspot]"]
    for key, value in values.items():
        lines.append(f"{key} = {value}" if isinstance(value, int) else f'{key} = "{value}"')
    return "\n".join(lines) + "\n"


async def run_cli(*args: str, config: Path, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "GATEWAY_CONFIG": str(config), **(env or {})},
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


class Clock:
    """The wall clock plus an offset the test moves (the grace period passes at once)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@contextlib.asynccontextmanager
async def dev_gateway(tmp_path: Path, **overrides: Any) -> AsyncIterator[tuple[Client, Clock]]:
    """``./dev run``'s gateway, alice in the demo portal, the outbox on a clock the test moves;
    ``overrides`` are settings (as ``make_settings`` takes them)."""
    users = [{**user, "tenant": DEMO_PORTAL} for user in harness_users()]
    write_users(tmp_path / "users.json", users)
    port = free_port()
    settings = replace(make_settings(tmp_path, **overrides), dev=True, port=port)
    gw = build_gateway(settings)
    logger = gw.call_logger
    assert logger is not None
    clock = Clock()
    logger.outbox.clock = clock
    config = server_config(
        build_app(settings, gw), settings, host="127.0.0.1", port=port, log_level="warning"
    )
    async with serve(config) as base_url:
        client = Client(base_url, gw)
        try:
            yield client, clock
        finally:
            await client.aclose()


async def page_once_logged(client: Client, clock: Clock, done: str) -> str:
    """The stand-in's page once it shows ``done``: after the grace period (moved past), with a deadline."""
    clock.offset += DEFAULT_GRACE_SECONDS
    deadline = time.monotonic() + 10
    while done not in (page := (await client.http.get(MOUNT + "/")).text):
        assert time.monotonic() < deadline, f"the stand-in's page never showed {done!r}"
        await asyncio.sleep(0.05)  # the page is all there is to watch
    return page
