"""Running a gateway with SIP on against a fake PBX, for the SIP tests."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from gateway.sources.sip.service import SipService
from tests.support.fakepbx import FakePbx
from tests.support.harness import Client, make_settings, running_gateway


def sip_table(pbx: FakePbx | None = None, **extra: Any) -> dict[str, Any]:
    table: dict[str, Any] = {
        "listen": ["udp:127.0.0.1:0", "tcp:127.0.0.1:0"],
        "t1_seconds": 0.05,
        "retry_min_seconds": 0.05,
        "retry_max_seconds": 0.2,
        **extra,
    }
    if pbx is not None:
        table["pbx"] = {"100": pbx.pbx_settings(**table.pop("pbx_extra", {}))}
    return table


def sip_service(client: Client) -> SipService:
    return next(c for c in client.gateway.components if isinstance(c, SipService))


def sip_address(client: Client, kind: str, family: int = socket.AF_INET) -> tuple[str, int]:
    local = sip_service(client).transport.local(kind, family)
    assert local is not None
    return local


@contextlib.asynccontextmanager
async def sip_gateway(tmp_path: Path, table: dict[str, Any], **overrides: Any) -> AsyncIterator[Client]:
    async with running_gateway(make_settings(tmp_path, extra={"sip": table}, **overrides)) as client:
        yield client


def ringing(call_id: str, remote: str = "sip:+15555550199@carrier.test", **extra: Any) -> dict[str, Any]:
    return {
        "id": call_id,
        "call_id": call_id,
        "state": "early",
        "direction": "recipient",
        "remote": remote,
        **extra,
    }


def confirmed(call_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": call_id, "call_id": call_id, "state": "confirmed", "direction": "recipient", **extra}


def ended(call_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": call_id, "call_id": call_id, "state": "terminated", "direction": "recipient", **extra}
