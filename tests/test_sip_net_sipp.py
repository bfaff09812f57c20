"""sipp, an independent SIP implementation, drives the gateway over loopback."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from tests.servers import free_port
from tests.sipkit import sip_address, sip_gateway, sip_table

SCENARIOS = Path(__file__).parent / "sipp"

pytestmark = pytest.mark.sipp


async def run_sipp(
    scenario: str, target: tuple[str, int], service: str, work: Path, transport: str = "u1"
) -> tuple[int, str]:
    errors = work / "sipp-errors.log"
    exe = shutil.which("sipp")
    assert exe, "sipp is not installed (make test installs sip-tester)"
    process = await asyncio.create_subprocess_exec(
        exe,
        f"{target[0]}:{target[1]}",
        "-sf",
        str(SCENARIOS / scenario),
        "-s",
        service,
        "-t",
        transport,
        "-i",
        "127.0.0.1",
        "-p",
        str(free_port()),
        "-m",
        "1",
        "-timeout",
        "20s",
        "-timeout_error",
        "-nostdin",
        "-trace_err",
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


async def test_sipp_publishing_a_call_drives_the_users_stream(tmp_path: Path) -> None:
    async with sip_gateway(tmp_path, sip_table()) as gw:
        token = await gw.login("alice")
        async with gw.stream(token) as stream:
            code, output = await run_sipp("publish_dialog.xml", sip_address(gw, "udp"), "1001", tmp_path)
            assert code == 0, output[-2000:]
            events = await stream.take(4)
    types = [e.json["type"] for e in events]
    assert types == ["incomingCall", "callAnswered", "callEnded", "callCompleted"]
    assert events[0].json["payload"]["fromNumber"] == "+15555550142"
    assert events[2].json["payload"]["callEndStatus"] == "COMPLETED"
