"""The gateway's own SSE response against sse-starlette's, side by side, in one run.

    python -m bench.sse_compare [--streams 2000] [--events 20] [--rate 10] [--stuck-seconds 8]

For each response layer (``bench/sse_compare_server.py``: same broker,
subscription, events and uvicorn; only ``/api/stream`` differs) it starts a
server process on loopback and measures, from outside that process:

1. memory per idle stream: the server's RSS growth over ``--streams`` open
   streams, divided by their number;
2. CPU per delivered event: the server's CPU time while ``--events`` events
   fan out to every one of those streams, divided by the deliveries;
3. a stuck client: a connection that never reads while events flow to its
   user; how long until the server's response gives up on it, whether its
   socket is released, and how much the server's RSS grew meanwhile.

sse-starlette runs twice: with a ``send_timeout`` (its one documented knob
against a client that stops reading, so its best configuration) and with
its defaults. Loopback only; bounded by ``--stuck-seconds`` and timeouts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench import run_client
from bench.procstat import cpu_seconds, rss_kib
from bench.run import raise_open_files
from bench.server import _stop, _wait_ready, free_port
from bench.stats import percentile
from bench.streams import Deliveries, open_streams

HOST = "127.0.0.1"
# Linux TCP states as TCP_INFO reports them (include/net/tcp_states.h).
TCP_STATES = {1: "open", 7: "closed", 8: "closed by server"}


@dataclass(frozen=True)
class Variant:
    label: str
    response: str  # bench.sse_compare_server's --response
    send_timeout: float | None = None

    def server_args(self) -> list[str]:
        args = ["--response", self.response]
        if self.send_timeout is not None:
            args += ["--send-timeout", str(self.send_timeout)]
        return args


@dataclass(frozen=True)
class Options:
    streams: int = 2000
    events: int = 20  # fanned out to every stream
    rate: float = 10.0  # events per second during the fan-out
    stuck_seconds: float = 8.0  # how long the stuck client is watched at most
    # Loopback's kernel send buffer grows to ~4 MB on Linux before uvicorn's
    # send blocks at all: a high rate of padded events gets there in seconds.
    stuck_rate: float = 800.0  # events per second to the stuck client's user
    stuck_pad: int = 1024  # bytes of padding per stuck event
    send_timeout: float = 2.0  # sse-starlette's, in its best configuration
    settle_seconds: float = 1.0  # pause before each RSS reading, for the server to go idle
    drain_seconds: float = 15.0  # how long to wait for the last fan-out deliveries
    quiet: bool = False

    def variants(self) -> list[Variant]:
        lib = f"sse-starlette {version('sse-starlette')}"
        return [
            Variant("own EventStream", "own"),
            Variant(f"{lib}, send_timeout={self.send_timeout:g}s", "sse-starlette", self.send_timeout),
            Variant(f"{lib}, defaults", "sse-starlette"),
        ]


@dataclass
class Result:
    label: str
    streams: int = 0
    stream_failures: int = 0
    rss_per_stream_kib: float = 0.0
    expected: int = 0
    delivered: int = 0
    cpu_per_event_us: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    stuck_dropped_s: float | None = None  # None: still served when the watch ended
    stuck_socket_freed: bool = False
    stuck_client_saw: str = ""
    stuck_rss_growth_kib: int = 0
    control_rss_growth_kib: int = 0  # the same events to a user with no stream
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Server:
    pid: int
    port: int


def _say(options: Options, text: str) -> None:
    if not options.quiet:
        print(text, file=sys.stderr, flush=True)


def _spawn_server(variant: Variant, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "bench.sse_compare_server", "--port", str(port), *variant.server_args()]
    with log_path.open("wb") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


@contextlib.asynccontextmanager
async def server_process(variant: Variant) -> AsyncIterator[Server]:
    """``bench.sse_compare_server`` for one variant, started and stopped as bench/server.py does."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="sse-compare-") as workdir:
        log_path = Path(workdir) / "server.log"
        proc = _spawn_server(variant, port, log_path)
        try:
            await _wait_ready(proc, HOST, port, 30, log_path)
            yield Server(proc.pid, port)
        finally:
            _stop(proc)


async def _http(port: int, method: str, path: str) -> bytes:
    """One request on its own connection; the response body."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
        raw = await reader.read()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 2"):
        raise RuntimeError(f"{method} {path}: {head.splitlines()[0]!r}")
    return body


async def server_stat(port: int, name: str) -> int:
    """One count from the server's /bench/stats: responses, subscriptions, publishing."""
    stats: dict[str, Any] = json.loads(await _http(port, "GET", "/bench/stats"))
    return int(stats[name])


async def start_publishing(port: int, user: str, events: int, rate: float, pad: int) -> None:
    await _http(port, "POST", f"/bench/publish?user={user}&events={events}&rate={rate}&pad={pad}")


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``check`` until it is true or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(interval)
    return False


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def measure_fan_out(server: Server, options: Options, result: Result) -> None:
    """Idle memory per stream, then CPU per delivered event over the same streams."""
    deliveries = Deliveries()
    await asyncio.sleep(options.settle_seconds / 2)
    rss_before = rss_kib(server.pid)
    # Every stream belongs to one user: each event fans out to all of them.
    logins = [("u0", "u0")] * options.streams
    clients, failures = await open_streams(HOST, server.port, logins, deliveries, timeout=30)
    try:
        result.streams, result.stream_failures = len(clients), len(failures)
        await asyncio.sleep(options.settle_seconds)
        result.rss_per_stream_kib = (rss_kib(server.pid) - rss_before) / max(1, len(clients))
        result.expected = options.events * len(clients)
        cpu_before = cpu_seconds(server.pid)
        await start_publishing(server.port, "u0", options.events, options.rate, 0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                deliveries.reached(result.expected), options.events / options.rate + options.drain_seconds
            )
        cpu = cpu_seconds(server.pid) - cpu_before
        result.delivered = deliveries.total
        result.cpu_per_event_us = cpu / max(1, deliveries.total) * 1e6
        latencies = sorted(deliveries.latencies_ns)
        result.p50_ms, result.p99_ms = percentile(latencies, 50) / 1e6, percentile(latencies, 99) / 1e6
    finally:
        for client in clients:
            client.close()

    async def all_closed() -> bool:
        return await server_stat(server.port, "responses") == 0

    if not await wait_until(all_closed, 10):
        result.notes.append("fan-out streams still open 10 s after their clients left")


async def connect_stuck(port: int) -> socket.socket:
    """A stream request from a client that then never reads a byte."""
    sock = socket.socket()
    # A small receive window, as a phone on a dead network would offer: the
    # server's buffers fill in seconds rather than after megabytes.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, (HOST, port))
    request = f"GET /api/stream HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer stuck\r\n\r\n"
    await loop.sock_sendall(sock, request.encode())
    return sock


def tcp_state(sock: socket.socket) -> str:
    state = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]
    return TCP_STATES.get(state, f"state {state}")


async def measure_control(server: Server, options: Options, result: Result) -> None:
    """RSS growth from the stuck phase's events alone, published to a user with no stream.

    The broker keeps each call's state and the user's history, whoever
    listens; the stuck client's own cost is its growth beyond this.
    """
    rss_before = rss_kib(server.pid)
    events = max(1, int(options.stuck_rate * options.stuck_seconds))
    # Ten times the stuck phase's rate: the same allocations, in less time.
    await start_publishing(server.port, "nobody", events, options.stuck_rate * 10, options.stuck_pad)

    async def published() -> bool:
        return await server_stat(server.port, "publishing") == 0

    await wait_until(published, options.stuck_seconds + 5)
    result.control_rss_growth_kib = rss_kib(server.pid) - rss_before


async def measure_stuck(server: Server, options: Options, result: Result) -> None:
    """Events flow to a client that does not read: when does the server let go, at what memory cost?"""
    await asyncio.sleep(options.settle_seconds / 2)
    rss_before, fds_before = rss_kib(server.pid), open_fds(server.pid)
    sock = await connect_stuck(server.port)
    try:

        async def opened() -> bool:
            return await server_stat(server.port, "responses") == 1

        if not await wait_until(opened, 5):
            raise RuntimeError(f"{result.label}: the stuck client's stream did not open")
        events = max(1, int(options.stuck_rate * options.stuck_seconds))
        started, deadline = time.monotonic(), options.stuck_seconds + 2
        await start_publishing(server.port, "stuck", events, options.stuck_rate, options.stuck_pad)
        # Watched to the end even once dropped: the RSS figure then covers the
        # same events as the control's, whichever response let go first.
        peak = rss_before
        while await server_stat(server.port, "publishing") and time.monotonic() - started < deadline:
            peak = max(peak, rss_kib(server.pid))
            if result.stuck_dropped_s is None and await server_stat(server.port, "responses") == 0:
                result.stuck_dropped_s = time.monotonic() - started
            await asyncio.sleep(0.05)
        result.stuck_rss_growth_kib = max(peak, rss_kib(server.pid)) - rss_before
        result.stuck_socket_freed = open_fds(server.pid) <= fds_before
        result.stuck_client_saw = tcp_state(sock)
    finally:
        sock.close()


async def measure(variant: Variant, options: Options) -> Result:
    result = Result(variant.label)
    async with server_process(variant) as server:
        _say(options, f"{variant.label}: server pid {server.pid}")
        # Stuck client first, on a fresh heap: after the fan-out's thousands of
        # streams close, their freed memory would hide any growth from RSS.
        _say(options, f"{variant.label}: stuck client, up to {options.stuck_seconds:g}s")
        await measure_control(server, options, result)
        await measure_stuck(server, options, result)
        _say(options, f"{variant.label}: {options.streams} streams, {options.events} events to each")
        await measure_fan_out(server, options, result)
    return result


async def compare(options: Options) -> list[Result]:
    limit = raise_open_files(options.streams + 1024)
    if limit < options.streams + 64:
        raise RuntimeError(f"open-files limit {limit} is too low for {options.streams} streams")
    # One after the other, never together: each server has the machine to itself.
    return [await measure(variant, options) for variant in options.variants()]


def _rows(results: list[Result], options: Options) -> list[tuple[str, list[str]]]:
    def dropped(r: Result) -> str:
        if r.stuck_dropped_s is None:
            return f"not within {options.stuck_seconds:g}"
        return f"{r.stuck_dropped_s:.2f}"

    return [
        ("idle streams open (failed)", [f"{r.streams} ({r.stream_failures})" for r in results]),
        ("RSS per idle stream, KiB", [f"{r.rss_per_stream_kib:.1f}" for r in results]),
        ("fan-out deliveries / expected", [f"{r.delivered} / {r.expected}" for r in results]),
        ("server CPU per delivered event, µs", [f"{r.cpu_per_event_us:.1f}" for r in results]),
        ("delivery latency p50 / p99, ms", [f"{r.p50_ms:.1f} / {r.p99_ms:.1f}" for r in results]),
        ("stuck client: response ended after, s", [dropped(r) for r in results]),
        ("stuck client: server socket released", ["yes" if r.stuck_socket_freed else "no" for r in results]),
        ("stuck client: its TCP connection", [r.stuck_client_saw for r in results]),
        ("stuck client: server RSS growth, KiB", [str(r.stuck_rss_growth_kib) for r in results]),
        ("  same events, no stream (control), KiB", [str(r.control_rss_growth_kib) for r in results]),
    ]


def render(results: list[Result], options: Options) -> str:
    rows = _rows(results, options)
    heads = [r.label for r in results]
    first = max(len(name) for name, _ in rows)
    widths = [max(len(head), *(len(values[i]) for _, values in rows)) for i, head in enumerate(heads)]

    def line(name: str, cells: list[str]) -> str:
        return " | ".join([name.ljust(first), *(c.rjust(w) for c, w in zip(cells, widths, strict=True))])

    out = [
        f"{options.streams} streams, {options.events} events at {options.rate:g}/s fanned out to all; "
        f"stuck client: {options.stuck_rate:g} events/s of +{options.stuck_pad} B, watched "
        f"{options.stuck_seconds:g}s",
        line("", heads),
        "-|-".join("-" * w for w in [first, *widths]),
        *(line(name, cells) for name, cells in rows),
    ]
    out += [f"note ({r.label}): {note}" for r in results for note in r.notes]
    return "\n".join(out)


def parse_options(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="./dev bench sse-compare", description=__doc__)
    add = parser.add_argument
    add("--streams", type=int, default=Options.streams, help="idle streams held open")
    add("--events", type=int, default=Options.events, help="events fanned out to every stream")
    add("--rate", type=float, default=Options.rate, help="fan-out events per second")
    add(
        "--stuck-seconds",
        type=float,
        default=Options.stuck_seconds,
        help="how long to watch the stuck client",
    )
    add("--stuck-rate", type=float, default=Options.stuck_rate, help="events per second to the stuck client")
    add("--stuck-pad", type=int, default=Options.stuck_pad, help="padding bytes per stuck-client event")
    add("--send-timeout", type=float, default=Options.send_timeout, help="sse-starlette's send_timeout")
    add("--settle", type=float, default=Options.settle_seconds, help="pause before RSS readings, s")
    add("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    numbers = (args.streams, args.events, args.rate, args.stuck_seconds, args.stuck_rate, args.send_timeout)
    if min(numbers) <= 0 or args.stuck_pad < 0:
        parser.error("sizes, rates, times must be positive (--stuck-pad may be 0)")
    return replace(
        Options(),
        streams=args.streams,
        events=args.events,
        rate=args.rate,
        stuck_seconds=args.stuck_seconds,
        stuck_rate=args.stuck_rate,
        stuck_pad=args.stuck_pad,
        send_timeout=args.send_timeout,
        settle_seconds=args.settle,
        quiet=args.quiet,
    )


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    try:
        results = run_client(compare(options))
    except (RuntimeError, OSError) as exc:
        print(f"bench.sse_compare: {exc}", file=sys.stderr)
        return 2
    print(render(results, options))
    return 0 if all(r.delivered == r.expected and not r.stream_failures for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
