"""Mutants of a module: every behaviour changed once, nothing that cannot change behaviour."""

from __future__ import annotations

import ast
import textwrap

from mutation.operators import Mutant, mutants

MODULE = textwrap.dedent(
    '''
    """A module docstring."""
    import enum
    import logging

    log = logging.getLogger("x")
    __all__ = ["Colour", "TABLE", "check"]

    class Colour(enum.StrEnum):
        RED = "red"

    TABLE = {"a": 1, "b": 2}

    def check(n: int) -> bool:
        """A function docstring."""
        if n < 10:
            log.info("small: %d", n)
            raise ValueError(f"too small: {n}", 422)
        return n > 20 and Colour.RED == "red"
    '''
)


def line_of(text: str) -> int:
    return next(n for n, line in enumerate(MODULE.splitlines(), 1) if text in line)


def descriptions(source: str = MODULE) -> list[tuple[int, str]]:
    return [(m.line, m.description) for m in mutants(source, "m.py")]


def only(description: str) -> Mutant:
    (found,) = [m for m in mutants(MODULE, "m.py") if m.description == description]
    return found


def test_a_comparison_has_its_boundary_moved() -> None:
    assert only("< -> <=").source.count("n <= 10") == 1


def test_a_row_of_a_module_table_is_dropped() -> None:
    assert "TABLE = {'b': 2}" in only("entry 0 dropped").source


def test_an_enum_value_is_changed() -> None:
    assert (line_of('RED = "red"'), "'red' -> 'XXredXX'") in descriptions()


def test_a_status_code_in_an_exception_is_changed_but_not_its_wording() -> None:
    found, line = descriptions(), line_of("raise ValueError")
    assert (line, "422 -> 423") in found
    assert not any(where == line and "small" in text for where, text in found)


def test_docstrings_annotations_log_wording_and_all_are_left_alone() -> None:
    found = [text for _, text in descriptions()]
    assert not any("docstring" in text or "small: %d" in text for text in found)
    assert not any("'Colour'" in text or "'int'" in text for text in found)


def test_a_boolean_operator_and_a_return_value_are_mutated() -> None:
    assert "return n > 20 or Colour.RED == 'red'" in only("and -> or").source
    assert "return None" in only("return x -> return None").source


def test_every_mutant_parses_and_differs_from_the_original() -> None:
    original = ast.unparse(ast.parse(MODULE))
    for mutant in mutants(MODULE, "m.py"):
        assert ast.unparse(ast.parse(mutant.source)) != original


def test_ids_are_unique_and_survive_an_edit_elsewhere() -> None:
    before = [m.id for m in mutants(MODULE, "m.py")]
    edited = MODULE.replace('log = logging.getLogger("x")', 'log = logging.getLogger("y")\n')
    assert len(set(before)) == len(before)
    assert only("< -> <=").id in [m.id for m in mutants(edited, "m.py")]


def test_identical_lines_get_distinct_ids() -> None:
    source = "def f(x):\n    if x:\n        return 1\n    return 1\n"
    ids = [m.id for m in mutants(source, "m.py") if m.description == "1 -> 2"]
    assert len(ids) == 2 and len(set(ids)) == 2


def test_type_aliases_and_generic_annotations_are_left_alone() -> None:
    source = "Fact = tuple[int, int, str]\nHandler = Callable[[int], str]\nLIMITS = (1, 2)\n"
    assert [m.description for m in mutants(source, "m.py")] == [
        "element 0 dropped",
        "element 1 dropped",
        "1 -> 2",
        "2 -> 3",
    ]
