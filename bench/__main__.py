"""``./dev bench``: hold N SSE streams on one gateway and push events through it.

``./dev bench sip`` runs the SIP benchmark (``bench.sip_bench``),
``./dev bench redis-path`` the Redis path of a signal in one process
(``bench.redis_path``) and ``./dev bench sse-compare`` the SSE response
against sse-starlette's (``bench.sse_compare``); each takes ``--help``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import cast

from bench import run_client
from bench.run import Options, run


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["sip"]:
        from bench import sip_bench

        return sip_bench.main(argv[1:])
    if argv[:1] == ["redis-path"]:
        from bench import redis_path

        return redis_path.main(argv[1:])
    if argv[:1] == ["sse-compare"]:
        from bench import sse_compare

        return sse_compare.main(argv[1:])
    parser = argparse.ArgumentParser(prog="./dev bench", description=__doc__)
    parser.add_argument("--streams", type=int, default=Options.streams, help="concurrent SSE streams")
    parser.add_argument("--per-user", type=int, default=Options.per_user, help="streams per user")
    parser.add_argument("--rate", type=float, default=Options.rate, help="events per second")
    parser.add_argument("--seconds", type=float, default=Options.seconds, help="how long to send")
    parser.add_argument("--redis", action="store_true", help="run a redis-server and use the Redis broker")
    parser.add_argument(
        "--workers", type=int, default=1, help="gateway serve --workers N (with --redis when above 1)"
    )
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="extra environment for the gateway"
    )
    parser.add_argument("--gateway-log", type=Path, help="keep the gateway's output in this file")
    parser.add_argument("--per-second", action="store_true", help="also print latency second by second")
    args = parser.parse_args(argv)
    if args.streams < 1 or args.per_user < 1 or args.rate <= 0 or args.seconds <= 0:
        parser.error("--streams, --per-user, --rate and --seconds must be positive")
    if args.workers < 1 or (args.workers > 1 and not args.redis):
        parser.error("--workers: at least 1, and above 1 only with --redis")
    env = tuple(tuple(item.split("=", 1)) for item in args.env if "=" in item)
    options = Options(
        streams=args.streams,
        per_user=args.per_user,
        rate=args.rate,
        seconds=args.seconds,
        redis=args.redis,
        gateway_env=cast(tuple[tuple[str, str], ...], env),
        gateway_log=args.gateway_log,
        workers=args.workers,
    )
    try:
        report = run_client(run(options))
    except (RuntimeError, OSError) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    print(report.render(per_second=args.per_second))
    # One line to keep and compare runs by (``jq``, a spreadsheet).
    print(json.dumps({"bench": "streams", **report.summary()}, separators=(",", ":")))
    return 0 if report.lost == 0 and report.stream_failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
