"""Runs a module's tests against each of its mutants, in copies of the tree.

Each worker owns a copy of ``gateway/``, ``tests/``, ``web/js/`` and
``pyproject.toml`` in a temporary folder, so the working tree is never
touched; a mutant is written into the worker's copy, its module's tests run
(first failure ends the run), and the original is put back. Bytecode is not
cached: a mutant written within the same second as the original, with the
same size, must not be served from a stale ``.pyc``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from mutation.operators import Mutant, mutants

_COPIED = ("gateway", "tests", "web/js", "pyproject.toml")


@dataclass(frozen=True)
class Result:
    mutant: Mutant
    status: str  # killed, survived, timeout (counted as killed), equivalent


@dataclass
class Report:
    module: str
    results: list[Result] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, *statuses: str) -> int:
        return sum(r.status in statuses for r in self.results)

    @property
    def score(self) -> float:
        judged = len(self.results) - self.count("equivalent")
        return 100.0 if judged == 0 else 100.0 * self.count("killed", "timeout") / judged

    @property
    def survivors(self) -> list[Result]:
        return [r for r in self.results if r.status == "survived"]


def load_equivalents(path: Path) -> dict[str, str]:
    """Reviewed equivalent mutants: id -> the reason no test can tell them apart."""
    if not path.exists():
        return {}
    data = tomllib.loads(path.read_text())
    return {entry["id"]: entry["reason"] for entry in data.get("equivalent", [])}


def changed_lines(root: Path, module: str, base: str) -> set[int]:
    """Lines of ``module`` added or changed since ``base`` (working tree included)."""
    diff = subprocess.run(
        ["git", "diff", "-U0", base, "--", module], cwd=root, capture_output=True, text=True, check=True
    ).stdout
    lines: set[int] = set()
    for row in diff.splitlines():
        if row.startswith("@@"):
            added = row.split("+", 1)[1].split(" ", 1)[0]
            start, _, count = added.partition(",")
            lines.update(range(int(start), int(start) + int(count or "1")))
    return lines


@contextmanager
def _workspaces(root: Path, count: int) -> Iterator[list[Path]]:
    with tempfile.TemporaryDirectory(prefix="mutation-") as tmp:
        spaces = []
        for index in range(count):
            space = Path(tmp) / str(index)
            for name in _COPIED:
                source, target = root / name, space / name
                if source.is_dir():
                    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(source, target)
            spaces.append(space)
        yield spaces


def _run_tests(space: Path, tests: Iterable[str], timeout: float) -> str:
    env = {**os.environ, "PYTHONPATH": str(space), "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--no-header", *tests]
    try:
        done = subprocess.run(command, cwd=space, env=env, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return "timeout"
    return "survived" if done.returncode == 0 else "killed"


def run_module(
    root: Path,
    module: str,
    tests: tuple[str, ...],
    *,
    jobs: int,
    equivalents: dict[str, str],
    lines: set[int] | None = None,
    progress: Callable[[Result], None] = lambda result: None,
) -> Report:
    """Every mutant of ``module`` (only those on ``lines`` when given) against ``tests``."""
    started = time.monotonic()
    report = Report(module)
    original = (root / module).read_text()
    candidates = [m for m in mutants(original, module) if lines is None or m.line in lines]
    pending = []
    for mutant in candidates:
        if mutant.id in equivalents:
            report.results.append(Result(mutant, "equivalent"))
        else:
            pending.append(mutant)
    if not pending:
        report.seconds = time.monotonic() - started
        return report
    with _workspaces(root, max(1, min(jobs, len(pending)))) as spaces:
        baseline_started = time.monotonic()
        if _run_tests(spaces[0], tests, timeout=600) != "survived":
            raise RuntimeError(f"the tests of {module} fail without any mutant: {' '.join(tests)}")
        timeout = 5 + 4 * (time.monotonic() - baseline_started)

        def work(space: Path, batch: list[Mutant]) -> list[Result]:
            target = space / module
            out = []
            try:
                for mutant in batch:
                    target.write_text(mutant.source)
                    result = Result(mutant, _run_tests(space, tests, timeout))
                    progress(result)
                    out.append(result)
            finally:
                target.write_text(original)
            return out

        batches = [pending[i :: len(spaces)] for i in range(len(spaces))]
        with ThreadPoolExecutor(len(spaces)) as pool:
            for results in pool.map(work, spaces, batches):
                report.results.extend(results)
    report.results.sort(key=lambda r: (r.mutant.line, r.mutant.id))
    report.seconds = time.monotonic() - started
    return report
