"""``./dev mutate``: mutation scores of the pure modules, and the mutants that survive."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mutation.runner import Report, Result, changed_lines, load_equivalents, run_module
from mutation.targets import GOAL, TARGETS

ROOT = Path(__file__).resolve().parents[1]
EQUIVALENTS = Path(__file__).resolve().parent / "equivalent.toml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./dev mutate", description=__doc__)
    parser.add_argument("modules", nargs="*", help="module paths or folders (default: every target)")
    parser.add_argument("--changed", metavar="REV", help="only mutants on lines changed since REV")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="tests run at once")
    parser.add_argument("--list", action="store_true", help="list the mutants, run nothing")
    args = parser.parse_args(argv)
    chosen = [m for m in TARGETS if not args.modules or any(_names(m, wanted) for wanted in args.modules)]
    if not chosen:
        parser.error(f"no target matches {' '.join(args.modules)}; targets: {' '.join(TARGETS)}")
    equivalents = load_equivalents(EQUIVALENTS)
    reports: list[Report] = []
    for module in chosen:
        lines = changed_lines(ROOT, module, args.changed) if args.changed else None
        if args.list:
            from mutation.operators import mutants

            for mutant in mutants((ROOT / module).read_text(), module):
                if lines is None or mutant.line in lines:
                    print(f"{mutant.id}  {module}:{mutant.line}  {mutant.description}")
            continue
        report = run_module(
            ROOT,
            module,
            TARGETS[module],
            jobs=args.jobs,
            equivalents=equivalents,
            lines=lines,
            progress=_dot,
        )
        reports.append(report)
        print(f"\r{_summary(report)}", flush=True)
        for result in report.survivors:
            print(f"  survived {_where(result)}")
    if args.list or not reports:
        return 0
    print()
    print(f"{'module':44} {'mutants':>8} {'killed':>7} {'equiv.':>7} {'survived':>9} {'score':>7}")
    for report in reports:
        print(
            f"{report.module:44} {len(report.results):>8} {report.count('killed', 'timeout'):>7} "
            f"{report.count('equivalent'):>7} {len(report.survivors):>9} {report.score:>6.1f}%"
        )
    if args.changed:
        return 1 if any(r.survivors for r in reports) else 0
    return 1 if any(r.score < GOAL for r in reports) else 0


def _names(module: str, wanted: str) -> bool:
    wanted = wanted.rstrip("/")
    return module == wanted or module.startswith(wanted + "/")


def _dot(result: Result) -> None:
    sys.stdout.write("." if result.status != "survived" else "S")
    sys.stdout.flush()


def _summary(report: Report) -> str:
    return (
        f"{report.module}: {len(report.results)} mutants, {report.count('killed', 'timeout')} killed, "
        f"{report.count('equivalent')} equivalent, {len(report.survivors)} survived: "
        f"{report.score:.1f}% ({report.seconds:.0f} s)"
    )


def _where(result: Result) -> str:
    mutant = result.mutant
    return f"{mutant.id}  line {mutant.line}: {mutant.description}"


if __name__ == "__main__":
    sys.exit(main())
