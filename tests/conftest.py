from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support import logcheck
from tests.support.harness import Client, make_settings, running_gateway
from tests.support.redis_topologies import ClusterSetup, SentinelSetup, running
from tests.support.servers import RedisServer

# The browser fixtures (a session-wide Chromium, the simulator page).
pytest_plugins = ["tests.support.browser"]

# Each failure that a rerun then passed, with its reason: a flake to fix, not to forget.
_reruns: list[pytest.TestReport] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.outcome == "rerun":  # type: ignore[comparison-overlap]  # pytest-rerunfailures' outcome
        _reruns.append(report)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _reruns:
        return
    terminalreporter.section("failures that passed when run again (flaky: fix them)", yellow=True)
    for report in _reruns:
        reason = report.longreprtext.strip().splitlines()
        # The exception pytest marks with "E", else the traceback's last line.
        marked = [line[1:].strip() for line in reason if line.startswith("E ")]
        said = marked[0] if marked else reason[-1] if reason else "?"
        terminalreporter.line(f"{report.nodeid} ({report.when}): {said}")
        terminalreporter.line("\n".join(reason[-40:]))


@pytest.fixture(autouse=True)
def _log_declarations() -> Iterator[None]:
    """A declaration of an expected log record (``logcheck.expect_log``) lasts one test at most."""
    yield
    logcheck.reset()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def cluster() -> Iterator[ClusterSetup]:
    """A real Redis Cluster of three primaries on free ports."""
    with running(ClusterSetup()) as setup:
        yield setup


@pytest.fixture
def sentinel_setup() -> Iterator[SentinelSetup]:
    """A real primary, a replica and three sentinels on free ports."""
    with running(SentinelSetup()) as setup:
        yield setup


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Client]:
    """A gateway on the embedded (memory) broker, served by uvicorn on loopback."""
    async with running_gateway(make_settings(tmp_path)) as client:
        yield client
