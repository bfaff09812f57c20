"""One bench run: start the gateway, open the streams, send, measure, report."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.load import send_events
from bench.procstat import cpu_seconds, rss_kib
from bench.server import gateway_process
from bench.stats import Report, percentile, timeline
from bench.streams import Deliveries, open_streams


@dataclass(frozen=True)
class Options:
    streams: int = 10_000
    per_user: int = 1  # streams per user (the gateway fans a user's events out to each)
    rate: float = 2_000.0  # events per second
    seconds: float = 10.0
    redis: bool = False
    drain_seconds: float = 10.0  # how long to wait for the last deliveries
    quiet: bool = False
    gateway_env: tuple[tuple[str, str], ...] = ()  # extra GATEWAY_* settings for the server
    gateway_log: Path | None = None  # where the server's output goes (default: discarded)
    workers: int = 1  # gateway serve --workers (needs redis)

    @property
    def users(self) -> int:
        return max(1, -(-self.streams // self.per_user))

    @property
    def events(self) -> int:
        return max(1, int(self.rate * self.seconds))


def raise_open_files(wanted: int) -> int:
    """Raise this process's (and so the gateway's) open-files limit as far as allowed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


async def run(options: Options) -> Report:
    def say(text: str) -> None:
        if not options.quiet:
            print(text, file=sys.stderr, flush=True)

    limit = raise_open_files(options.streams + 1024)
    if limit < options.streams + 64:
        raise RuntimeError(f"open-files limit {limit} is too low for {options.streams} streams")
    # The gateway caps streams per user; the bench may open more on purpose.
    env = {"GATEWAY_STREAMS_PER_USER": str(max(16, options.per_user)), **dict(options.gateway_env)}
    async with gateway_process(
        options.users, options.redis, env, options.gateway_log, options.workers
    ) as target:
        users = [f"bench{i}" for i in range(options.users)]
        logins = [
            (user, target.token(user)) for user in (users[i % len(users)] for i in range(options.streams))
        ]
        deliveries = Deliveries()
        await asyncio.sleep(0.5)  # let the server settle before the baseline
        pids = target.server_pids()
        rss_before = sum(rss_kib(pid) for pid in pids)
        say(f"gateway pids {pids} on {target.host}:{target.port}, RSS {rss_before} KiB")
        opened_at = time.monotonic()
        clients, failures = await open_streams(
            target.host, target.port, logins, deliveries, progress=lambda n: say(f"  {n} streams open")
        )
        open_seconds = time.monotonic() - opened_at
        await asyncio.sleep(1.0)
        rss_streams = sum(rss_kib(pid) for pid in pids)
        say(f"{len(clients)} streams open in {open_seconds:.1f}s ({len(failures)} failed); sending")
        streams_per_user: dict[str, int] = {}
        for client in clients:
            streams_per_user[client.user] = streams_per_user.get(client.user, 0) + 1
        # The client is the measuring instrument: a pause of its own collector
        # (it holds every stream) would show up as gateway latency.
        collector_was_on = gc.isenabled()
        gc.collect()
        gc.freeze()
        gc.disable()
        load_average = os.getloadavg()[0]
        try:
            cpu_each, cpu_client = [cpu_seconds(pid) for pid in pids], time.process_time()
            cpu_redis = cpu_seconds(target.redis_pid) if target.redis_pid else 0.0
            wall = time.monotonic()
            sent = await send_events(
                target.host, target.port, target.ingest_secret, users, options.events, options.rate
            )
            expected_total = sum(streams_per_user.get(u, 0) for u in sent.users.values())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(deliveries.reached(expected_total), options.drain_seconds)
            wall = time.monotonic() - wall
            cpu_each = [cpu_seconds(pid) - before for pid, before in zip(pids, cpu_each, strict=True)]
            cpu_server = sum(cpu_each)
            cpu_client = time.process_time() - cpu_client
            if target.redis_pid:
                cpu_redis = cpu_seconds(target.redis_pid) - cpu_redis
            rss_after = sum(rss_kib(pid) for pid in pids)
            load_average_end = os.getloadavg()[0]
            if len(pids) > 1:  # how evenly the kernel spread the work
                say("CPU by worker while sending: " + ", ".join(f"{c / wall:.0%}" for c in cpu_each))
        finally:
            if collector_was_on:
                gc.enable()
            gc.unfreeze()
            for client in clients:
                client.close()
    lost = sum(
        max(0, streams_per_user.get(user, 0) - deliveries.counts.get(seq, 0))
        for seq, user in sent.users.items()
    )
    duplicates = sum(
        max(0, n - streams_per_user.get(sent.users.get(seq, ""), 0)) for seq, n in deliveries.counts.items()
    )
    latencies = sorted(deliveries.latencies_ns)
    send_seconds = max(1e-9, (sent.last_ns - sent.first_ns) / 1e9)
    deliver_seconds = max(1e-9, (deliveries.last_ns - sent.first_ns) / 1e9) if latencies else 0.0
    return Report(
        broker="redis" if options.redis else "memory",
        streams=len(clients),
        stream_failures=len(failures),
        users=options.users,
        open_seconds=open_seconds,
        events_sent=len(sent.users),
        rejected=sum(sent.rejected.values()),
        expected=expected_total,
        delivered=deliveries.total,
        lost=lost,
        duplicates=duplicates,
        streams_closed=deliveries.closed,
        target_rate=options.rate,
        send_rate=len(sent.users) / send_seconds,
        delivery_rate=deliveries.total / deliver_seconds if deliver_seconds else 0.0,
        p50_ms=percentile(latencies, 50) / 1e6,
        p99_ms=percentile(latencies, 99) / 1e6,
        max_ms=(latencies[-1] if latencies else 0) / 1e6,
        rss_before_kib=rss_before,
        rss_streams_kib=rss_streams,
        rss_after_kib=rss_after,
        server_cpu=cpu_server / wall,
        client_cpu=cpu_client / wall,
        redis_cpu=cpu_redis / wall,
        load_average=load_average,
        timeline=timeline(deliveries.arrivals_ns, deliveries.latencies_ns, sent.first_ns),
        wall_seconds=wall,
        load_average_end=load_average_end,
        workers=options.workers,
    )
