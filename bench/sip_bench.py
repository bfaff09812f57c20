"""SIP PUBLISH in, SSE events out: messages per second and latency of one gateway process.

    python -m bench.sip_bench [--calls 2000] [--users 50] [--window 64]

Starts ``python -m gateway serve`` as a child process on loopback (embedded
broker, SIP on UDP), logs its users in, opens their event streams, then
plays calls as Kamailio's pua_dialoginfo publishes them: three PUBLISHes per
call (early, confirmed, terminated), each with the entity tag of the last.
A PUBLISH's latency is from its send to the arrival of the SSE event it
causes (incomingCall, callAnswered, callEnded). Bounded: at most ``calls``
calls, ``window`` in flight, a 120 s ceiling, loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import DEVNULL
from typing import Any

import httpx

from bench.procstat import cpu_seconds
from bench.stats import percentile
from gateway.auth.passwords import hash_password

PASSWORD = "bench-password-0123"
EVENT_FOR_STATE = {"early": "incomingCall", "confirmed": "callAnswered", "terminated": "callEnded"}


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Results:
    sent: dict[tuple[str, str], int] = field(default_factory=dict)  # (call, event type) -> send time, ns
    latencies: list[int] = field(default_factory=list)  # ns
    events: int = 0
    retransmissions: int = 0
    failures: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)
    expected: int = 0


class UdpClient(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: Any = None
        self.pending: dict[str, asyncio.Future[bytes]] = {}

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        head = data.split(b"\r\n\r\n", 1)[0].decode(errors="replace")
        for line in head.split("\r\n"):
            if line.lower().startswith("via:") and "branch=" in line:
                branch = line.split("branch=", 1)[1].split(";", 1)[0].strip()
                future = self.pending.get(branch)
                if future is not None and not future.done():
                    future.set_result(data)
                return


def header(data: bytes, name: str) -> str | None:
    for line in data.split(b"\r\n\r\n", 1)[0].decode(errors="replace").split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name:
            return value.strip()
    return None


def publish(aor: str, port: int, body: bytes, etag: str | None, cseq: int) -> tuple[str, bytes]:
    branch = "z9hG4bK" + secrets.token_hex(8)
    lines = [
        f"PUBLISH {aor} SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch={branch};rport",
        "Max-Forwards: 70",
        f"From: <{aor}>;tag={secrets.token_hex(4)}",
        f"To: <{aor}>",
        f"Call-ID: {secrets.token_hex(8)}@bench",
        f"CSeq: {cseq} PUBLISH",
        "Event: dialog",
        "Expires: 600",
        "Content-Type: application/dialog-info+xml",
    ]
    if etag:
        lines.append(f"SIP-If-Match: {etag}")
    lines += [f"Content-Length: {len(body)}", "", ""]
    return branch, "\r\n".join(lines).encode() + body


def document(aor: str, version: int, call: str, state: str) -> bytes:
    remote = "<remote><identity>sip:+15555550142@carrier.test</identity></remote>" if state == "early" else ""
    return (
        f'<?xml version="1.0"?>\n<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="{version}" '
        f'state="full" entity="{aor}"><dialog id="{call}" call-id="{call}" direction="recipient">'
        f"<state>{state}</state>{remote}</dialog></dialog-info>"
    ).encode()


async def play_call(
    client: UdpClient, target: tuple[str, int], local_port: int, aor: str, call: str, results: Results
) -> None:
    etag: str | None = None
    for version, state in enumerate(("early", "confirmed", "terminated"), start=1):
        branch, data = publish(aor, local_port, document(aor, version, call, state), etag, version)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        client.pending[branch] = future
        results.sent[(call, EVENT_FOR_STATE[state])] = time.perf_counter_ns()
        answer = None
        for attempt in range(4):  # Timer E on loopback: 0.5 s, then doubling
            client.transport.sendto(data, target)
            try:
                answer = await asyncio.wait_for(asyncio.shield(future), 0.5 * 2**attempt)
                break
            except TimeoutError:
                results.retransmissions += 1
        client.pending.pop(branch, None)
        if answer is None or not answer.startswith(b"SIP/2.0 200"):
            results.failures += 1
            return
        etag = header(answer, "sip-etag")


async def read_stream(http: httpx.AsyncClient, token: str, results: Results, opened: asyncio.Event) -> None:
    async with http.stream("GET", "/api/stream", headers={"authorization": f"Bearer {token}"}) as response:
        async for line in response.aiter_lines():
            if line == ": connected":
                opened.set()
            if not line.startswith("data:"):
                continue
            event = json.loads(line[5:])
            now = time.perf_counter_ns()
            call = str(event.get("externalCallId", "")).rsplit(":", 1)[-1]
            sent = results.sent.pop((call, event.get("type")), None)
            if sent is not None:
                results.latencies.append(now - sent)
                results.events += 1
                if results.events >= results.expected:
                    results.done.set()


def write_setup(work: Path, users: int, http_port: int, sip_port: int) -> dict[str, str]:
    password_hash = hash_password(PASSWORD)
    entries = [
        {
            "login": f"bench{i}",
            "tenant": 1,
            "password_hash": password_hash,
            "aors": [f"sip:{2000 + i}@bench.test"],
        }
        for i in range(users)
    ]
    (work / "users.json").write_text(json.dumps({"users": entries}))
    (work / "gateway.toml").write_text(f'[sip]\nlisten = ["udp:127.0.0.1:{sip_port}"]\n')
    return {
        **os.environ,
        "GATEWAY_CONFIG": str(work / "gateway.toml"),
        "GATEWAY_USERS_FILE": str(work / "users.json"),
        "GATEWAY_PORT": str(http_port),
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_SECRET": secrets.token_urlsafe(24),
        "GATEWAY_STREAM_BUFFER": "100000",
    }


async def run(calls: int, users: int, window: int) -> dict[str, float]:
    http_port, sip_port = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_DGRAM)
    with tempfile.TemporaryDirectory(prefix="sip-bench-") as tmp:
        env = write_setup(Path(tmp), users, http_port, sip_port)
        gateway = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", "serve", env=env, stdout=DEVNULL, stderr=DEVNULL
        )
        try:
            figures = await asyncio.wait_for(
                drive(calls, users, window, http_port, sip_port, gateway.pid), 120
            )
            return figures
        finally:
            gateway.terminate()
            try:
                await asyncio.wait_for(gateway.wait(), 10)
            except TimeoutError:
                gateway.kill()
                await gateway.wait()


async def drive(
    calls: int, users: int, window: int, http_port: int, sip_port: int, pid: int
) -> dict[str, float]:
    base = f"http://127.0.0.1:{http_port}"
    results = Results(expected=calls * 3)
    limits = httpx.Limits(max_connections=users + 10)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as http:
        for _ in range(200):
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get("/readyz")).status_code == 200:
                    break
            await asyncio.sleep(0.05)
        readers = []
        for i in range(users):
            login = await http.post("/api/login", json={"login": f"bench{i}", "password": PASSWORD})
            opened = asyncio.Event()
            readers.append(asyncio.create_task(read_stream(http, login.json()["token"], results, opened)))
            await asyncio.wait_for(opened.wait(), 10)
        loop = asyncio.get_running_loop()
        transport, client = await loop.create_datagram_endpoint(UdpClient, local_addr=("127.0.0.1", 0))
        local_port = transport.get_extra_info("sockname")[1]
        target = ("127.0.0.1", sip_port)
        gate = asyncio.Semaphore(window)

        async def one(n: int) -> None:
            async with gate:
                aor = f"sip:{2000 + n % users}@bench.test"
                await play_call(client, target, local_port, aor, f"bench{n}", results)

        started, cpu_started = time.perf_counter(), cpu_seconds(pid)
        await asyncio.gather(*(one(n) for n in range(calls)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(results.done.wait(), 10)
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds(pid) - cpu_started
        transport.close()
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    latencies = sorted(results.latencies)

    def pct(p: float) -> float:
        return percentile(latencies, p) / 1e6

    return {
        "messages": calls * 3,
        "events_matched": results.events,
        "seconds": elapsed,
        "messages_per_second": calls * 3 / elapsed,
        "gateway_cpu_seconds": cpu,
        "messages_per_gateway_cpu_second": calls * 3 / cpu if cpu else 0.0,
        "p50_ms": pct(50),
        "p90_ms": pct(90),
        "p99_ms": pct(99),
        "max_ms": pct(100),
        "mean_ms": statistics.fmean(latencies) / 1e6 if latencies else 0.0,
        "retransmissions": results.retransmissions,
        "failures": results.failures,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="./dev bench sip", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--window", type=int, default=64, help="calls in flight at once")
    args = parser.parse_args(argv)
    calls, users, window = min(args.calls, 20_000), min(args.users, 500), min(args.window, 1000)
    figures = asyncio.run(run(calls, users, window))
    print(f"SIP PUBLISH -> SSE, one gateway process, {users} users, {window} calls in flight")
    for name, value in figures.items():
        print(f"  {name:22} {value:,.2f}" if isinstance(value, float) else f"  {name:22} {value:,}")


if __name__ == "__main__":
    main()
