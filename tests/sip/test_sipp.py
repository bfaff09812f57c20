"""sipp, an independent SIP implementation, drives the gateway over loopback."""

from __future__ import annotations

import asyncio
import shutil
import socket
from pathlib import Path

import pytest

from tests.support import harness
from tests.support.servers import free_port, write_users
from tests.support.sipkit import sip_address, sip_gateway, sip_table

SCENARIOS = Path(__file__).parent / "sipp"

pytestmark = pytest.mark.sipp


async def run_sipp(
    scenario: str,
    target: tuple[str, int] | None,
    service: str,
    work: Path,
    transport: str = "u1",
    port: int | None = None,
) -> tuple[int, str]:
    """Run one sipp call of ``scenario``: as a client towards ``target``, or as a server on ``port``."""
    errors = work / f"sipp-errors-{scenario}.log"
    where = [f"{target[0]}:{target[1]}"] if target is not None else []
    exe = shutil.which("sipp")
    assert exe, "sipp is not installed (make test installs sip-tester)"
    process = await asyncio.create_subprocess_exec(
        exe,
        *where,
        "-sf",
        str(SCENARIOS / scenario),
        "-s",
        service,
        "-t",
        transport,
        "-i",
        "127.0.0.1",
        "-p",
        str(port or free_port(socket.SOCK_STREAM if transport.startswith("t") else socket.SOCK_DGRAM)),
        "-m",
        "1",
        "-timeout",
        "20s",
        "-timeout_error",
        "-nostdin",
        "-trace_err",
        "-trace_msg",
        "-message_file",
        str(work / "sipp-messages.log"),
        "-error_file",
        str(errors),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    report = errors.read_text(errors="replace") if errors.exists() else output.decode(errors="replace")
    return process.returncode, report


@pytest.mark.parametrize(("kind", "mode"), [("udp", "u1"), ("tcp", "t1")])
async def test_sipp_publishing_a_call_drives_the_users_stream(tmp_path: Path, kind: str, mode: str) -> None:
    async with sip_gateway(tmp_path, sip_table(publish_from=["127.0.0.1"])) as gw:
        token = await gw.login("alice")
        async with gw.stream(token) as stream:
            code, output = await run_sipp(
                "publish_dialog.xml", sip_address(gw, kind), "1001", tmp_path, transport=mode
            )
            assert code == 0, output[-2000:]
            events = await stream.take(4)
    types = [e.json["type"] for e in events]
    assert types == ["incomingCall", "callAnswered", "callEnded", "callCompleted"]
    assert events[0].json["payload"]["fromNumber"] == "+15555550142"
    assert events[0].json["payload"]["toNumber"] == "+15555550101"
    assert events[2].json["payload"]["callEndStatus"] == "COMPLETED"


async def test_sipp_as_the_pbx_challenges_then_notifies_a_call(tmp_path: Path) -> None:
    alice = [u for u in harness.test_users() if u["login"] == "alice"]
    write_users(tmp_path / "users.json", alice)
    port = free_port(socket.SOCK_DGRAM)
    pbx = {
        "address": f"127.0.0.1:{port}",
        "domain": "pbx.test",
        "username": "gateway",
        "password": "sipp-password",
    }
    # sipp starts once the stream is open; until then the gateway's SUBSCRIBE
    # goes unanswered and is retransmitted, as towards a PBX that is down.
    table = {**sip_table(t1_seconds=0.1), "pbx": {"100": pbx}}
    async with sip_gateway(tmp_path, table) as gw:
        token = await gw.login("alice")
        async with gw.stream(token) as stream:
            code, report = await run_sipp("pbx_dialog_notify.xml", None, "1001", tmp_path, port=port)
            assert code == 0, report[-2000:]
            events = await stream.take(4)
    types = [e.json["type"] for e in events]
    assert types == ["incomingCall", "callAnswered", "callEnded", "callCompleted"]
    assert events[0].json["payload"]["fromNumber"] == "+15555550143"
