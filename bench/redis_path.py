"""``./dev bench redis-path``: the Redis path of a signal in one process, CPU per event.

What ``./dev bench --redis`` exercises minus HTTP: an ingest body of
signals parsed (``parse_signals``), observed (``CallTracker.observe_all``:
the model's step, the advance script's pipeline on a real ``redis-server``
of its own), each event back through the pub/sub listener into a stream's
queue and written as SSE bytes. One stream per user, every signal a new
call's ringing, as the streaming benchmark sends. The figure is this
process's CPU time per event (``time.process_time``), which a busy machine
changes much less than latency; redis-server's CPU is not in it.
``--profile`` adds cProfile's top functions.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from bench import run_client
from bench.server import start_redis
from gateway.broker.redis import RedisBroker
from gateway.broker.stream_queue import StreamQueue
from gateway.config import Settings
from gateway.ops.metrics import Metrics
from gateway.sources.ingest import parse_signals
from gateway.tracker import CallTracker
from gateway.users.directory import Directory, User
from gateway.wire import sse_events

_BATCH = 20  # signals per ingest body, as the streaming benchmark sends
_AT_ONCE = 8  # bodies in flight together (its keep-alive connections)


def _body(first: int, users: int) -> bytes:
    signals = [
        {
            "source": "bench",
            "callId": f"path-{first + i}",
            "user": f"u{(first + i) % users}",
            "direction": "inbound",
            "phase": "ringing",
            "from": "+15555550100",
        }
        for i in range(_BATCH)
    ]
    return json.dumps({"signals": signals}, separators=(",", ":")).encode()


async def _drain(subs: list[StreamQueue], expected: int, written: list[int]) -> None:
    """Take and write what the streams hold until ``expected`` events were written in all."""
    while written[0] < expected:
        for sub in subs:
            ready = sub.pending()
            if ready:
                sse_events(ready)
                written[0] += len(ready)
        await asyncio.sleep(0)


async def _until_listening(redis_url: str, seconds: float = 10) -> None:
    """Until the fresh redis-server accepts connections (the broker would log each refusal)."""
    address = urlsplit(redis_url)
    deadline = time.monotonic() + seconds
    while True:
        try:
            _, writer = await asyncio.open_connection(address.hostname, address.port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.02)
            continue
        writer.close()
        return


async def measure(redis_url: str, users: int, rounds: int, warmup: int, profile: bool) -> dict[str, float]:
    await _until_listening(redis_url)
    broker = RedisBroker(Settings(redis_url=redis_url))
    await broker.start()
    try:
        await asyncio.wait_for(broker._ready.wait(), 10)
        tracker = CallTracker(broker, Metrics())
        directory = Directory(
            User(id=f"u{i}", login=f"u{i}", tenant=1, password_hash="-") for i in range(users)
        )
        subs = [await broker.subscribe(f"u{i}", None) for i in range(users)]
        per_round = _BATCH * _AT_ONCE
        bodies = [
            [_body((r * _AT_ONCE + j) * _BATCH, users) for j in range(_AT_ONCE)]
            for r in range(warmup + rounds)
        ]
        written = [0]

        async def one_round(r: int) -> None:
            async def request(body: bytes) -> None:
                await tracker.observe_all(parse_signals(body, directory, int(time.time() * 1000)))

            await asyncio.gather(*(request(body) for body in bodies[r]))
            await asyncio.wait_for(_drain(subs, (r + 1) * per_round, written), 10)

        for r in range(warmup):
            await one_round(r)
        profiler = cProfile.Profile() if profile else None
        cpu, wall = time.process_time(), time.perf_counter()
        if profiler is not None:
            profiler.enable()
        for r in range(warmup, warmup + rounds):
            await one_round(r)
        if profiler is not None:
            profiler.disable()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        if profiler is not None:
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(30)
            print(out.getvalue(), file=sys.stderr)
        events = rounds * per_round
        return {
            "events": events,
            "cpu_us_per_event": round(cpu / events * 1e6, 1),
            "wall_us_per_event": round(wall / events * 1e6, 1),
            "load_average": round(os.getloadavg()[0], 2),
        }
    finally:
        await broker.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="./dev bench redis-path", description=__doc__)
    parser.add_argument("--users", type=int, default=1000, help="users, one stream each")
    parser.add_argument(
        "--rounds", type=int, default=100, help=f"rounds of {_AT_ONCE} bodies of {_BATCH} signals"
    )
    parser.add_argument("--warmup", type=int, default=10, help="rounds first, not measured")
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="gw-redis-path-"))
    redis_proc, url = start_redis(workdir)
    try:
        result = run_client(measure(url, args.users, args.rounds, args.warmup, args.profile))
    finally:
        redis_proc.terminate()
        redis_proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)
    print(
        f"{result['events']} events: {result['cpu_us_per_event']} µs CPU per event "
        f"({result['wall_us_per_event']} µs wall), load average {result['load_average']}"
    )
    print(json.dumps({"bench": "redis-path", **result}, separators=(",", ":")))
    return 0
