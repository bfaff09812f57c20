"""The bench at toy size: it runs end to end and accounts for every event."""

from __future__ import annotations

import json

from bench.run import Options, run
from bench.sse import SseParser


async def test_bench_delivers_every_event_to_every_stream_of_its_user() -> None:
    report = await run(Options(streams=20, per_user=2, rate=50, seconds=1, quiet=True))
    assert report.streams == 20 and report.stream_failures == 0
    assert report.events_sent == 50 and report.rejected == 0
    # Ten users with two streams each: every event reaches both of its user's streams.
    assert report.expected == 100
    assert report.delivered == 100
    assert report.lost == 0 and report.duplicates == 0


async def test_bench_runs_against_its_own_redis() -> None:
    report = await run(Options(streams=10, rate=40, seconds=1, redis=True, quiet=True))
    assert report.broker == "redis"
    assert report.expected == 40 and report.delivered == 40 and report.lost == 0


def test_sse_parser_reassembles_events_split_across_reads() -> None:
    body = b'retry: 2000\n: connected\n\nid: 1-1\nevent: sdk\ndata: {"a":1}\n\nid: 1-2\ndata: {"b":2}\n\n'
    wire = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        + f"{len(body[:30]):x}\r\n".encode()
        + body[:30]
        + b"\r\n"
        + f"{len(body[30:]):x}\r\n".encode()
        + body[30:]
        + b"\r\n0\r\n\r\n"
    )
    parser = SseParser()
    events = [event for i in range(len(wire)) for event in parser.feed(wire[i : i + 1])]
    assert parser.status == 200 and parser.opened and parser.ended
    assert events == [b'{"a":1}', b'{"b":2}']


async def test_bench_summary_is_one_line_of_json_with_cpu_per_event() -> None:
    report = await run(Options(streams=10, rate=40, seconds=1, quiet=True))
    line = json.dumps(report.summary())
    assert "\n" not in line
    summary = json.loads(line)
    assert summary["events_sent"] == 40 and summary["lost"] == 0
    assert summary["server_cpu_ms_per_event"] > 0
