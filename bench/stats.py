"""The bench's figures and how they are printed."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass


def percentile(ordered: list[int], pct: float) -> int:
    """Nearest-rank percentile of an already sorted list (0 when empty)."""
    if not ordered:
        return 0
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


@dataclass(frozen=True)
class Second:
    """Deliveries that arrived in one second of the run."""

    at: int
    count: int
    p50_ms: float
    max_ms: float


def timeline(arrivals_ns: list[int], latencies_ns: list[int], start_ns: int) -> list[Second]:
    buckets: dict[int, list[int]] = {}
    for arrived, latency in zip(arrivals_ns, latencies_ns, strict=True):
        buckets.setdefault((arrived - start_ns) // 1_000_000_000, []).append(latency)
    out = []
    for at in sorted(buckets):
        ordered = sorted(buckets[at])
        out.append(Second(at, len(ordered), percentile(ordered, 50) / 1e6, ordered[-1] / 1e6))
    return out


@dataclass(frozen=True)
class Report:
    broker: str
    streams: int
    stream_failures: int
    users: int
    open_seconds: float
    events_sent: int
    rejected: int
    expected: int  # deliveries due: each event once per stream of its user
    delivered: int
    lost: int
    duplicates: int
    streams_closed: int
    target_rate: float
    send_rate: float
    delivery_rate: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    rss_before_kib: int
    rss_streams_kib: int
    rss_after_kib: int
    server_cpu: float  # CPU seconds per wall second while sending (1.0 = one core)
    client_cpu: float
    redis_cpu: float
    load_average: float  # the machine's 1-minute load when sending began (others' work included)
    timeline: list[Second]
    wall_seconds: float = 0.0  # the sending phase (and the wait for its last deliveries)
    load_average_end: float = 0.0  # the 1-minute load when it ended
    workers: int = 1

    @property
    def server_cpu_ms_per_event(self) -> float:
        """Server CPU per event sent, in ms: comparable across loads, unlike latency."""
        return self.server_cpu * self.wall_seconds * 1000 / max(1, self.events_sent - self.rejected)

    def summary(self) -> dict[str, object]:
        """The run's figures in one flat mapping, for the JSON line that runs are compared by."""
        return {
            "broker": self.broker,
            "workers": self.workers,
            "streams": self.streams,
            "stream_failures": self.stream_failures,
            "users": self.users,
            "target_rate": self.target_rate,
            "events_sent": self.events_sent,
            "rejected": self.rejected,
            "delivered": self.delivered,
            "lost": self.lost,
            "duplicates": self.duplicates,
            "delivery_rate": round(self.delivery_rate, 1),
            "p50_ms": round(self.p50_ms, 2),
            "p99_ms": round(self.p99_ms, 2),
            "max_ms": round(self.max_ms, 2),
            "kib_per_stream": round(self.kib_per_stream, 2),
            "server_cpu": round(self.server_cpu, 3),
            "server_cpu_ms_per_event": round(self.server_cpu_ms_per_event, 4),
            "client_cpu": round(self.client_cpu, 3),
            "redis_cpu": round(self.redis_cpu, 3),
            "load_average": round(self.load_average, 2),
            "load_average_end": round(self.load_average_end, 2),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "target_met": not self.misses(),
        }

    @property
    def kib_per_stream(self) -> float:
        return (self.rss_streams_kib - self.rss_before_kib) / max(1, self.streams)

    def misses(self) -> list[str]:
        """Where this run falls short of the target (10,000 streams at <= 30 KB, 2,000/s, p99 <= 20 ms)."""
        out = []
        if self.streams < 10_000 or self.stream_failures:
            out.append(f"{self.streams} streams open, {self.stream_failures} failed (target 10,000)")
        if self.kib_per_stream * 1024 > 30_000:
            out.append(f"{self.kib_per_stream:.1f} KiB per stream (target 30 KB)")
        if self.delivery_rate < 0.99 * 2_000:
            out.append(f"{self.delivery_rate:.0f} events/s (target 2,000)")
        if self.p99_ms > 20:
            out.append(f"p99 {self.p99_ms:.1f} ms (target 20)")
        if self.lost or self.rejected:
            out.append(f"{self.lost} lost, {self.rejected} rejected (target none)")
        return out

    def render(self, per_second: bool = False) -> str:
        lines = [
            f"broker            {self.broker}",
            f"streams           {self.streams} open for {self.users} users "
            f"({self.stream_failures} failed to open, opened in {self.open_seconds:.1f}s)",
            f"events            {self.events_sent} sent at {self.send_rate:.0f}/s "
            f"(target {self.target_rate:.0f}/s), {self.rejected} rejected",
            f"deliveries        {self.delivered} of {self.expected}: lost {self.lost}, "
            f"duplicates {self.duplicates}, streams closed {self.streams_closed}",
            f"delivery rate     {self.delivery_rate:.0f} events/s",
            f"latency           p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms, "
            f"max {self.max_ms:.1f} ms (ingest POST to SSE line at the client)",
            f"server RSS        {self.rss_before_kib / 1024:.1f} MiB idle, "
            f"{self.rss_streams_kib / 1024:.1f} MiB with streams, "
            f"{self.rss_after_kib / 1024:.1f} MiB after sending",
            f"RSS per stream    {self.kib_per_stream:.1f} KiB",
            f"CPU while sending server {self.server_cpu * 100:.0f}%, client {self.client_cpu * 100:.0f}%"
            + (f", redis-server {self.redis_cpu * 100:.0f}%" if self.broker == "redis" else "")
            + f" (100% = one core); server {self.server_cpu_ms_per_event:.3f} ms per event",
            f"load average      {self.load_average:.2f} when sending began",
            "target            " + ("met" if not self.misses() else "missed: " + "; ".join(self.misses())),
        ]
        if per_second:
            lines.append("second  deliveries  p50 ms  max ms")
            lines.extend(f"{s.at:6d}  {s.count:10d}  {s.p50_ms:6.1f}  {s.max_ms:6.1f}" for s in self.timeline)
        return "\n".join(lines)
