"""Patterns that check text from outside end at its very end.

``$`` also matches before a final newline, so ``re.match(r"^[a-z]+$", "id\\n")``
accepts an id with a newline in it; ``\\Z`` does not. Every pattern compiled
in the package is read here, so a new one cannot bring the mistake back.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gateway"


def compiled_patterns() -> list[tuple[str, str]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "compile"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "re"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found.append((f"{path.relative_to(PACKAGE.parent)}:{node.lineno}", node.args[0].value))
    return found


def test_the_package_has_patterns_to_check() -> None:
    assert len(compiled_patterns()) > 10


@pytest.mark.parametrize(("where", "pattern"), compiled_patterns())
def test_no_pattern_ends_with_a_dollar_that_lets_a_newline_through(where: str, pattern: str) -> None:
    assert not pattern.endswith("$"), f"{where}: end {pattern!r} with \\Z, not $"


def test_the_difference_is_real() -> None:
    assert re.match(r"^[a-z]+$", "id\n") and not re.match(r"^[a-z]+\Z", "id\n")
