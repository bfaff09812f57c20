"""Debian's Kamailio as a real PBX proxy for the tests, and sipp phones placing calls through it.

The configs are files in ``tests/sip/kamailio/`` (one per mode, documented in
docs/sip.md); what differs per test (ports, the database directory) is given
on the command line as pre-processor defines, so the files run unchanged
outside the tests too:

- ``publish``: a proxy whose ``pua_dialoginfo`` PUBLISHes the callee's
  dialog state straight to the gateway;
- ``presence``: a proxy and presence server that the gateway SUBSCRIBEs to;
- ``click_to_dial``: a PBX for the SIP dialling route: it challenges the
  gateway's INVITEs, routes extension 1001 to the user's phone and other
  numbers to the callee, and PUBLISHes every dialog to the gateway.

Kamailio runs in the foreground (``-DD -E``), logging to ``kamailio.log`` in
the test's directory; it counts as started once it answers an OPTIONS, and
is stopped (TERM, then KILL of its process group) at the end, bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal

from tests.support.servers import free_port
from tests.support.sipwire import request, status_of, udp_peer

Mode = Literal["publish", "presence", "click_to_dial"]

CONFIGS = Path(__file__).parents[1] / "sip" / "kamailio"
SCENARIOS = Path(__file__).parents[1] / "sip" / "sipp"
# The db_text table definitions Debian's kamailio package ships; pua and
# presence check the versions of their tables even when they keep all in memory.
DBTEXT = Path("/usr/share/kamailio/dbtext/kamailio")
TABLES: dict[Mode, tuple[str, ...]] = {
    "publish": ("version", "pua"),
    "presence": ("version", "pua", "presentity", "active_watchers", "watchers", "xcap"),
    "click_to_dial": ("version", "pua"),
}
START_SECONDS = 10.0
STOP_SECONDS = 5.0


class Kamailio:
    """One Kamailio on a free loopback UDP port, routing every INVITE to ``callee``."""

    def __init__(
        self,
        work: Path,
        mode: Mode,
        *,
        callee: tuple[str, int],
        gateway: tuple[str, int] | None = None,
        defines: dict[str, str] | None = None,
    ) -> None:
        if mode == "publish" and gateway is None:
            raise ValueError("PUBLISH mode needs the gateway's SIP address")
        self.mode = mode
        self.work = work / f"kamailio-{mode}"
        self.port = free_port(socket.SOCK_DGRAM)
        self.callee = callee
        self.gateway = gateway
        self.defines = defines or {}
        self.log_path = self.work / "kamailio.log"
        self._process: asyncio.subprocess.Process | None = None

    @property
    def address(self) -> tuple[str, int]:
        return "127.0.0.1", self.port

    def command(self) -> list[str]:
        exe = shutil.which("kamailio") or "/usr/sbin/kamailio"
        assert os.path.exists(exe), "kamailio is not installed (./dev test installs it)"
        defines = {
            "CALLEE": f"sip:{self.callee[0]}:{self.callee[1]}",
            "DB_URL": f"text://{self.work / 'db'}",
            "SELF": f"sip:127.0.0.1:{self.port}",
        }
        if self.gateway is not None:
            defines["GATEWAY"] = f"sip:{self.gateway[0]}:{self.gateway[1]}"
        defines.update(self.defines)
        command = [exe, "-DD", "-E", "-f", str(CONFIGS / f"{self.mode}.cfg")]
        command += ["-l", f"udp:127.0.0.1:{self.port}", "-Y", str(self.work), "-w", str(self.work)]
        # Small memory pools: several of these may run at once on a small machine.
        command += ["-m", "32", "-M", "4"]
        for name, value in defines.items():
            command += ["-A", f'{name}="{value}"']
        return command

    async def start(self) -> None:
        db = self.work / "db"
        db.mkdir(parents=True)
        for table in TABLES[self.mode]:
            shutil.copyfile(DBTEXT / table, db / table)
        with self.log_path.open("wb") as log:
            self._process = await asyncio.create_subprocess_exec(
                *self.command(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        try:
            await self._answering()
        except BaseException:
            await self.stop()
            raise

    async def _answering(self) -> None:
        """Until Kamailio answers an OPTIONS (asked again every 100 ms: UDP may be lost before it binds)."""
        assert self._process is not None
        deadline = time.monotonic() + START_SECONDS
        async with udp_peer() as peer:
            while time.monotonic() < deadline:
                if self._process.returncode is not None:
                    raise AssertionError(f"kamailio exited {self._process.returncode}:\n{self.log()[-3000:]}")
                peer.send(request("OPTIONS", port=peer.port, uri=f"sip:127.0.0.1:{self.port}"), self.address)
                with contextlib.suppress(TimeoutError):
                    if status_of(await peer.next(0.1)) == 200:
                        return
        raise AssertionError(f"kamailio did not answer OPTIONS in {START_SECONDS} s:\n{self.log()[-3000:]}")

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), STOP_SECONDS)
        except TimeoutError:
            # Its children are in the session it leads, whose id is its pid.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await asyncio.wait_for(process.wait(), STOP_SECONDS)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def __aenter__(self) -> Kamailio:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class Sipp:
    """One sipp process playing one call of a scenario: a phone calling or being called."""

    def __init__(
        self, work: Path, scenario: str, port: int, *, target: tuple[str, int] | None = None
    ) -> None:
        self.scenario = scenario
        self.port = port
        self.target = target
        self.errors = work / f"sipp-{Path(scenario).stem}-errors.log"
        self.messages = work / f"sipp-{Path(scenario).stem}-messages.log"
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        exe = shutil.which("sipp")
        assert exe, "sipp is not installed (./dev test installs sip-tester)"
        where = [f"{self.target[0]}:{self.target[1]}"] if self.target is not None else []
        self._process = await asyncio.create_subprocess_exec(
            exe,
            *where,
            "-sf", str(SCENARIOS / self.scenario),
            "-s", "1001",
            "-t", "u1",
            "-i", "127.0.0.1",
            "-p", str(self.port),
            "-m", "1",
            "-timeout", "20s",
            "-timeout_error",
            "-nostdin",
            "-trace_err", "-error_file", str(self.errors),
            "-trace_msg", "-message_file", str(self.messages),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip

    async def listening(self, timeout: float = 10) -> None:
        """Until the UDP port is bound (sipp says nothing when it is; the kernel's table does)."""
        assert self._process is not None
        suffix = f":{self.port:04X}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.returncode is not None:
                raise AssertionError(f"sipp {self.scenario} exited early:\n{self.report()}")
            if any(line.split()[1].endswith(suffix) for line in _udp_sockets()):
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"sipp {self.scenario} did not bind UDP port {self.port} in {timeout} s")

    async def finished(self, timeout: float = 30) -> None:
        """Until sipp has played its call; a failed call (or a late one) fails the test with sipp's report."""
        assert self._process is not None
        try:
            code = await asyncio.wait_for(self._process.wait(), timeout)
        except TimeoutError:
            await self.stop()
            raise AssertionError(f"sipp {self.scenario} still running after {timeout} s") from None
        assert code == 0, f"sipp {self.scenario} exited {code}:\n{self.report()}"

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await asyncio.wait_for(process.wait(), STOP_SECONDS)

    def report(self) -> str:
        parts = [p.read_text(errors="replace")[-2000:] for p in (self.errors, self.messages) if p.exists()]
        return "\n".join(parts)


def _udp_sockets() -> list[str]:
    lines: list[str] = []
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        with contextlib.suppress(OSError):
            lines += Path(table).read_text().splitlines()[1:]
    return lines


@contextlib.asynccontextmanager
async def call_through(
    kamailio: Kamailio, work: Path, caller: str, callee: str
) -> AsyncIterator[tuple[Sipp, Sipp]]:
    """A call placed through ``kamailio``: the callee's sipp listening first, then the caller's.

    The body of the ``async with`` runs while the call is played; on leaving,
    both phones must have played their scenario to the end.
    """
    phone = Sipp(work, callee, kamailio.callee[1])
    dialler = Sipp(work, caller, free_port(socket.SOCK_DGRAM), target=kamailio.address)
    try:
        await phone.start()
        await phone.listening()
        await dialler.start()
        yield dialler, phone
        await dialler.finished()
        await phone.finished()
    finally:
        await dialler.stop()
        await phone.stop()
