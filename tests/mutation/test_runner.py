"""The runner: a module's tests against each mutant, in a copy of the tree."""

from __future__ import annotations

from pathlib import Path

from mutation.runner import run_module

TOY = "def double(n):\n    return n * 2\n\n\ndef is_big(n):\n    return n > 100\n"
TEST = "from gateway.toy import double, is_big\n\n\ndef test_double():\n    assert double(3) == 6\n"


def toy_tree(root: Path) -> None:
    (root / "gateway").mkdir()
    (root / "gateway" / "toy.py").write_text(TOY)
    (root / "tests").mkdir()
    (root / "tests" / "test_toy.py").write_text(TEST)
    (root / "web" / "js").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")


def test_a_tested_line_kills_its_mutants_and_an_untested_one_survives(tmp_path: Path) -> None:
    toy_tree(tmp_path)
    report = run_module(tmp_path, "gateway/toy.py", ("tests/test_toy.py",), jobs=2, equivalents={})
    status = {(r.mutant.line, r.mutant.description): r.status for r in report.results}
    assert status[(2, "* -> +")] == "killed"
    assert status[(6, "> -> >=")] == "survived"
    assert (tmp_path / "gateway" / "toy.py").read_text() == TOY


def test_a_reviewed_equivalent_counts_neither_way(tmp_path: Path) -> None:
    toy_tree(tmp_path)
    first = run_module(tmp_path, "gateway/toy.py", ("tests/test_toy.py",), jobs=1, equivalents={})
    reviewed = {r.mutant.id: "untested on purpose" for r in first.survivors}
    again = run_module(tmp_path, "gateway/toy.py", ("tests/test_toy.py",), jobs=1, equivalents=reviewed)
    assert again.survivors == [] and again.score == 100.0
    assert again.count("equivalent") == len(first.survivors)
