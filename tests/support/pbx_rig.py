"""The AMI and ESL tests' rig: a gateway against a PBX stand-in (fake_ami.py, fake_esl.py), alice's page open.

``rig`` starts the stand-in, a gateway whose tenant 100 has a connection to
it (``dial``: and dials through it; ``settings``: the gateway's own), and
alice's SSE stream, so what a test asserts is what HubSpot would be told.
``late``: the PBX comes up only after the page is open.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import httpx

from gateway.sources.ami.client import AmiConnection
from gateway.sources.esl.client import EslConnection
from gateway.sources.pbxowner import PbxOwner
from tests.support.fake_ami import FakeAmi
from tests.support.fake_esl import FakeEsl
from tests.support.harness import Client, make_settings, running_gateway
from tests.support.sse import SseStream

TARGET = "+12125550100"

PbxT = TypeVar("PbxT", bound=FakeAmi | FakeEsl)


@dataclass
class Rig(Generic[PbxT]):
    pbx: PbxT
    gw: Client
    conn: AmiConnection | EslConnection
    token: str
    stream: SseStream

    async def dial(self, number: str = TARGET, **more: str) -> httpx.Response:
        auth = {"authorization": f"Bearer {self.token}"}
        return await self.gw.http.post("/api/dial", json={"number": number, **more}, headers=auth)


def kind(pbx: FakeAmi | FakeEsl) -> str:
    return "ami" if isinstance(pbx, FakeAmi) else "esl"


def table(pbx: FakeAmi | FakeEsl, **extra: Any) -> dict[str, Any]:
    """The tenant's ``[ami]``/``[esl]`` table for the stand-in, reconnecting quickly."""
    if isinstance(pbx, FakeAmi):
        login: dict[str, Any] = {"username": pbx.username, "secret": pbx.secret}
    else:
        login = {"password": pbx.password}
    return {
        "host": "127.0.0.1",
        "port": pbx.port,
        **login,
        "retry_min_seconds": 0.05,
        "retry_max_seconds": 0.2,
        "ping_seconds": 5,
        **extra,
    }


async def synced(conn: AmiConnection | EslConnection, sessions: int) -> None:
    """Until the ``sessions``-th session has learnt the calls in progress."""
    await asyncio.wait_for(conn.until_synced(sessions), 10)


@contextlib.asynccontextmanager
async def rig(
    tmp_path: Path,
    pbx: PbxT,
    *,
    late: bool = False,
    dial: bool = False,
    settings: dict[str, Any] | None = None,
    **extra: Any,
) -> AsyncIterator[Rig[PbxT]]:
    route = kind(pbx)
    async with pbx.running():
        tables: dict[str, Any] = {route: {"100": table(pbx, **extra)}}
        if dial:
            tables["dial"] = {"100": {"route": route}}
        if late:
            await pbx.stop()
        async with running_gateway(make_settings(tmp_path, extra=tables, **(settings or {}))) as gw:
            (conn,) = [c for o in gw.gateway.components if isinstance(o, PbxOwner) for c in o.links.values()]
            assert isinstance(conn, AmiConnection | EslConnection)
            if dial:
                await synced(conn, 1)
            token = await gw.login("alice")
            async with gw.stream(token) as stream:
                if late:
                    await pbx.start()
                yield Rig(pbx, gw, conn, token, stream)
