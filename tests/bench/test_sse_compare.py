"""bench.sse_compare at toy size: both response layers serve, and the table has their figures."""

from __future__ import annotations

import re

import pytest

from bench.sse_compare import main

TINY = [
    "--streams",
    "4",
    "--events",
    "3",
    "--rate",
    "30",
    "--stuck-seconds",
    "0.5",
    "--settle",
    "0.1",
    "--quiet",
]


def _row(table: str, name: str) -> list[str]:
    line = next(line for line in table.splitlines() if line.lstrip().startswith(name))
    return [cell.strip() for cell in line.split("|")[1:]]


def test_sse_compare_prints_figures_for_every_response_layer(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(TINY) == 0
    table = capsys.readouterr().out
    head = [cell.strip() for cell in table.splitlines()[1].split("|")[1:]]
    assert head[0] == "own EventStream" and all(h.startswith("sse-starlette") for h in head[1:])
    for name in (
        "RSS per idle stream",
        "server CPU per delivered event",
        "stuck client: response ended after",
        "stuck client: server RSS growth",
    ):
        cells = _row(table, name)
        assert len(cells) == 3 and all(re.search(r"\d", cell) for cell in cells), (name, cells)
    # Every event reached every stream, on each of the three servers.
    assert _row(table, "fan-out deliveries") == ["12 / 12"] * 3
