"""SIP PUBLISH or NOTIFY in, SSE events out: CPU per message and latency of one gateway process.

    ./dev bench sip [--mode publish|notify] [--calls 2000] [--users 50] [--window 64]

Starts ``python -m gateway serve`` as a child process on loopback (embedded
broker, SIP on UDP), logs its users in, opens their event streams, then
plays calls of three messages each (early, confirmed, terminated):

- ``publish``: as Kamailio's pua_dialoginfo publishes them, each PUBLISH
  with the entity tag of the last;
- ``notify``: as a PBX notifies dialog subscriptions. The bench is the
  users' PBX: it accepts the gateway's SUBSCRIBEs, then sends each user's
  documents as NOTIFYs in that subscription (``state="full"``, versions
  counting up), one call of a user at a time.

A message's latency is from its send to the arrival of the SSE event it
causes (incomingCall, callAnswered, callEnded). Bounded: at most ``calls``
calls, ``window`` in flight, a 120 s ceiling, loopback only. The last line
printed is the run's figures as one line of JSON (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
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


@dataclass
class Subscription:
    """A dialog subscription the gateway holds at the bench (its PBX): what the NOTIFYs in it need."""

    call_id: str
    gateway_from: str  # the SUBSCRIBE's From (the gateway's tag): the NOTIFYs' To
    contact: str  # where the gateway takes NOTIFYs: their request URI
    tag: str  # ours, in the answer's To: the NOTIFYs' From tag
    cseq: int = 0
    version: int = 0
    busy: asyncio.Lock = field(default_factory=asyncio.Lock)  # one call of a user at a time


class UdpClient(asyncio.DatagramProtocol):
    """The bench's SIP side: sends requests, matches answers by branch, and as the
    PBX (notify mode) accepts every SUBSCRIBE."""

    def __init__(self, expected_subscriptions: int = 0) -> None:
        self.transport: Any = None
        self.pending: dict[str, asyncio.Future[bytes]] = {}
        self.subscriptions: dict[str, Subscription] = {}  # by AOR
        self.expected_subscriptions = expected_subscriptions
        self.subscribed = asyncio.Event()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if data.startswith(b"SUBSCRIBE "):
            self.on_subscribe(data, addr)
            return
        branch = branch_of(header(data, "via") or "")
        future = self.pending.get(branch)
        if future is not None and not future.done():
            future.set_result(data)

    def on_subscribe(self, data: bytes, addr: Any) -> None:
        """Accept a SUBSCRIBE (new or refresh) for 600 s, as a PBX does."""
        heads = headers(data)
        first = {name: values[0] for name, values in heads.items()}
        to, call_id = first["to"], first["call-id"]
        aor = to.split("<", 1)[-1].split(">", 1)[0]
        known = self.subscriptions.get(aor)
        if known is None or known.call_id != call_id:
            contact = first.get("contact", "").split("<", 1)[-1].split(">", 1)[0]
            known = Subscription(call_id, first["from"], contact, secrets.token_hex(4))
            self.subscriptions[aor] = known
        if ";tag=" not in to:
            to = f"{to};tag={known.tag}"
        lines = ["SIP/2.0 200 OK", *(f"Via: {via}" for via in heads["via"])]
        lines += [f"From: {first['from']}", f"To: {to}", f"Call-ID: {call_id}", f"CSeq: {first['cseq']}"]
        lines += [f"Contact: <{aor}>", "Expires: 600", "Content-Length: 0", "", ""]
        self.transport.sendto("\r\n".join(lines).encode(), addr)
        if len(self.subscriptions) >= self.expected_subscriptions:
            self.subscribed.set()


def headers(data: bytes) -> dict[str, list[str]]:
    """A message's header values by lower-case name, in order."""
    out: dict[str, list[str]] = {}
    for line in data.split(b"\r\n\r\n", 1)[0].decode(errors="replace").split("\r\n")[1:]:
        key, _, value = line.partition(":")
        out.setdefault(key.strip().lower(), []).append(value.strip())
    return out


def header(data: bytes, name: str) -> str | None:
    values = headers(data).get(name)
    return values[0] if values else None


def branch_of(via: str) -> str:
    return via.split("branch=", 1)[1].split(";", 1)[0].strip() if "branch=" in via else ""


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


def notify(aor: str, port: int, body: bytes, subscription: Subscription) -> tuple[str, bytes]:
    branch = "z9hG4bK" + secrets.token_hex(8)
    subscription.cseq += 1
    lines = [
        f"NOTIFY {subscription.contact} SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch={branch};rport",
        "Max-Forwards: 70",
        f"From: <{aor}>;tag={subscription.tag}",
        f"To: {subscription.gateway_from}",
        f"Call-ID: {subscription.call_id}",
        f"CSeq: {subscription.cseq} NOTIFY",
        f"Contact: <{aor}>",
        "Event: dialog",
        "Subscription-State: active;expires=600",
        "Content-Type: application/dialog-info+xml",
        f"Content-Length: {len(body)}",
        "",
        "",
    ]
    return branch, "\r\n".join(lines).encode() + body


def document(aor: str, version: int, call: str, state: str) -> bytes:
    remote = "<remote><identity>sip:+15555550142@carrier.test</identity></remote>" if state == "early" else ""
    return (
        f'<?xml version="1.0"?>\n<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="{version}" '
        f'state="full" entity="{aor}"><dialog id="{call}" call-id="{call}" direction="recipient">'
        f"<state>{state}</state>{remote}</dialog></dialog-info>"
    ).encode()


async def transact(
    client: UdpClient, target: tuple[str, int], branch: str, data: bytes, results: Results
) -> bytes | None:
    """Send a request until answered (Timer E on loopback: 0.5 s, then doubling); the answer."""
    future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
    client.pending[branch] = future
    try:
        for attempt in range(4):
            client.transport.sendto(data, target)
            try:
                return await asyncio.wait_for(asyncio.shield(future), 0.5 * 2**attempt)
            except TimeoutError:
                results.retransmissions += 1
        return None
    finally:
        client.pending.pop(branch, None)


async def play_call(
    client: UdpClient, target: tuple[str, int], local_port: int, aor: str, call: str, results: Results
) -> None:
    """One call as PUBLISHes (pua_dialoginfo)."""
    etag: str | None = None
    for version, state in enumerate(("early", "confirmed", "terminated"), start=1):
        branch, data = publish(aor, local_port, document(aor, version, call, state), etag, version)
        results.sent[(call, EVENT_FOR_STATE[state])] = time.perf_counter_ns()
        answer = await transact(client, target, branch, data, results)
        if answer is None or not answer.startswith(b"SIP/2.0 200"):
            results.failures += 1
            return
        etag = header(answer, "sip-etag")


async def notify_call(
    client: UdpClient, target: tuple[str, int], local_port: int, aor: str, call: str, results: Results
) -> None:
    """One call as NOTIFYs in the user's subscription (a PBX's presence server)."""
    subscription = client.subscriptions[aor]
    async with subscription.busy:
        for state in ("early", "confirmed", "terminated"):
            subscription.version += 1
            body = document(aor, subscription.version, call, state)
            branch, data = notify(aor, local_port, body, subscription)
            results.sent[(call, EVENT_FOR_STATE[state])] = time.perf_counter_ns()
            answer = await transact(client, target, branch, data, results)
            if answer is None or not answer.startswith(b"SIP/2.0 200"):
                results.failures += 1
                return


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


def write_setup(
    work: Path, users: int, http_port: int, sip_port: int, pbx_port: int | None
) -> dict[str, str]:
    """The gateway's users and settings: PUBLISH from loopback, or (``pbx_port``) the bench as the PBX."""
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
    sip = f'[sip]\nlisten = ["udp:127.0.0.1:{sip_port}"]\npublish_from = ["127.0.0.1/32"]\n'
    if pbx_port is not None:
        sip += f'[sip.pbx.1]\naddress = "127.0.0.1:{pbx_port}"\n'
    (work / "gateway.toml").write_text(sip)
    return {
        **os.environ,
        "GATEWAY_CONFIG": str(work / "gateway.toml"),
        "GATEWAY_USERS_FILE": str(work / "users.json"),
        "GATEWAY_PORT": str(http_port),
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_SECRET": secrets.token_urlsafe(24),
        "GATEWAY_STREAM_BUFFER": "100000",
    }


async def run(mode: str, calls: int, users: int, window: int) -> dict[str, Any]:
    http_port, sip_port = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_DGRAM)
    # The bench's own SIP socket is bound first: in notify mode it is the PBX the settings name.
    loop = asyncio.get_running_loop()
    transport, client = await loop.create_datagram_endpoint(
        lambda: UdpClient(users if mode == "notify" else 0), local_addr=("127.0.0.1", 0)
    )
    local_port = int(transport.get_extra_info("sockname")[1])
    try:
        with tempfile.TemporaryDirectory(prefix="sip-bench-") as tmp:
            pbx_port = local_port if mode == "notify" else None
            env = write_setup(Path(tmp), users, http_port, sip_port, pbx_port)
            gateway = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway", "serve", env=env, stdout=DEVNULL, stderr=DEVNULL
            )
            try:
                figures = await asyncio.wait_for(
                    drive(mode, client, local_port, calls, users, window, http_port, sip_port, gateway.pid),
                    120,
                )
                return figures
            finally:
                gateway.terminate()
                try:
                    await asyncio.wait_for(gateway.wait(), 10)
                except TimeoutError:
                    gateway.kill()
                    await gateway.wait()
    finally:
        transport.close()


async def drive(
    mode: str,
    client: UdpClient,
    local_port: int,
    calls: int,
    users: int,
    window: int,
    http_port: int,
    sip_port: int,
    pid: int,
) -> dict[str, Any]:
    base = f"http://127.0.0.1:{http_port}"
    results = Results(expected=calls * 3)
    limits = httpx.Limits(max_connections=users + 10)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as http:
        for _ in range(200):
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get("/readyz")).status_code == 200:
                    break
            await asyncio.sleep(0.05)
        if mode == "notify":
            await asyncio.wait_for(client.subscribed.wait(), 20)
        readers = []
        for i in range(users):
            login = await http.post("/api/login", json={"login": f"bench{i}", "password": PASSWORD})
            opened = asyncio.Event()
            readers.append(asyncio.create_task(read_stream(http, login.json()["token"], results, opened)))
            await asyncio.wait_for(opened.wait(), 10)
        target = ("127.0.0.1", sip_port)
        gate = asyncio.Semaphore(window)
        play = notify_call if mode == "notify" else play_call

        async def one(n: int) -> None:
            async with gate:
                aor = f"sip:{2000 + n % users}@bench.test"
                await play(client, target, local_port, aor, f"bench{n}", results)

        load_average = os.getloadavg()[0]
        started, cpu_started = time.perf_counter(), cpu_seconds(pid)
        await asyncio.gather(*(one(n) for n in range(calls)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(results.done.wait(), 10)
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds(pid) - cpu_started
        load_average_end = os.getloadavg()[0]
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    latencies = sorted(results.latencies)

    def pct(p: float) -> float:
        return round(percentile(latencies, p) / 1e6, 2)

    return {
        "mode": mode,
        "users": users,
        "window": window,
        "messages": calls * 3,
        "events_matched": results.events,
        "seconds": round(elapsed, 2),
        "messages_per_second": round(calls * 3 / elapsed, 1),
        "gateway_cpu_seconds": round(cpu, 2),
        "messages_per_gateway_cpu_second": round(calls * 3 / cpu, 1) if cpu else 0.0,
        "p50_ms": pct(50),
        "p90_ms": pct(90),
        "p99_ms": pct(99),
        "max_ms": pct(100),
        "mean_ms": round(statistics.fmean(latencies) / 1e6, 2) if latencies else 0.0,
        "retransmissions": results.retransmissions,
        "failures": results.failures,
        "load_average": round(load_average, 2),
        "load_average_end": round(load_average_end, 2),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="./dev bench sip", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--mode", choices=("publish", "notify"), default="publish")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--window", type=int, default=64, help="calls in flight at once")
    args = parser.parse_args(argv)
    calls, users, window = min(args.calls, 20_000), min(args.users, 500), min(args.window, 1000)
    figures = asyncio.run(run(args.mode, calls, users, window))
    method = "NOTIFY" if args.mode == "notify" else "PUBLISH"
    print(f"SIP {method} -> SSE, one gateway process, {users} users, {window} calls in flight")
    for name, value in figures.items():
        print(f"  {name:32} {value:,}" if isinstance(value, int | float) else f"  {name:32} {value}")
    # One line to keep and compare runs by, as the streams bench prints.
    print(json.dumps({"bench": "sip", **figures}, separators=(",", ":")))
    return 0 if figures["failures"] == 0 and figures["events_matched"] == figures["messages"] else 1


if __name__ == "__main__":
    sys.exit(main())
