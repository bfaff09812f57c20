"""Mutants of a Python module: source in, one changed source per mutant out.

Sans-I/O. Every place of the module is a candidate, including what general
tools leave alone and where much of this project's logic lives: module
tables (a row dropped), enum values, default arguments, properties and
cached functions. What cannot change behaviour is skipped: docstrings, type
annotations, ``__all__`` and ``__slots__``, ``TYPE_CHECKING`` blocks, and
the wording of log lines and exception messages (their status codes and
arguments are still mutated).
"""

from __future__ import annotations

import ast
import copy
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

# What a comparison becomes: the neighbour that flips its boundary or its sense.
_COMPARE: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
_BINARY: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Add,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mult,
    ast.Mod: ast.FloorDiv,
    ast.Pow: ast.Mult,
    ast.BitAnd: ast.BitOr,
    ast.BitOr: ast.BitAnd,
    ast.LShift: ast.RShift,
    ast.RShift: ast.LShift,
}
_BOOL: dict[type[ast.boolop], type[ast.boolop]] = {ast.And: ast.Or, ast.Or: ast.And}
_LOG_METHODS = frozenset({"debug", "info", "warning", "error", "exception", "critical", "log"})
_SKIPPED_NAMES = frozenset({"__all__", "__slots__"})
_TYPE_GENERICS = frozenset(
    {
        "Literal",
        "tuple",
        "list",
        "dict",
        "set",
        "frozenset",
        "type",
        "Callable",
        "Mapping",
        "Iterable",
        "Optional",
    }
)


@dataclass(frozen=True)
class Mutant:
    id: str  # stable while the line's text stays the same
    line: int
    description: str
    source: str


@dataclass(frozen=True)
class _Site:
    node_index: int  # position of the node in ast.walk order
    description: str
    apply: Callable[[ast.AST, dict[ast.AST, ast.AST]], None]


def mutants(source: str, name: str) -> list[Mutant]:
    """Every mutant of ``source`` (the module called ``name`` in ids)."""
    tree = ast.parse(source)
    skipped = _skipped_nodes(tree)
    nodes = list(ast.walk(tree))
    sites = [site for index, node in enumerate(nodes) if node not in skipped for site in _sites(index, node)]
    lines = source.splitlines()
    seen: dict[tuple[str, str], int] = {}
    out: list[Mutant] = []
    for site in sites:
        line = getattr(nodes[site.node_index], "lineno", 0)
        changed = copy.deepcopy(tree)
        changed_nodes = list(ast.walk(changed))
        parents = {child: parent for parent in changed_nodes for child in ast.iter_child_nodes(parent)}
        site.apply(changed_nodes[site.node_index], parents)
        try:
            text = ast.unparse(ast.fix_missing_locations(changed))
        except (ValueError, TypeError):
            continue  # a replacement the unparser cannot write is no mutant
        line_text = lines[line - 1].strip() if 0 < line <= len(lines) else ""
        # The same line text may stand several times: count its mutants apart.
        key = (line_text, site.description)
        seen[key] = seen.get(key, 0) + 1
        digest = hashlib.sha1(f"{line_text}|{site.description}|{seen[key]}".encode()).hexdigest()[:10]
        out.append(Mutant(f"{name}:{digest}", line, site.description, text))
    return out


def _sites(index: int, node: ast.AST) -> Iterator[_Site]:
    if isinstance(node, ast.Compare):
        for k, op in enumerate(node.ops):
            if type(op) in _COMPARE:
                new = _COMPARE[type(op)]
                yield _Site(index, f"{_sym(op)} -> {_sym(new())}", _set_compare(k, new))
    elif isinstance(node, ast.BoolOp):
        new_bool = _BOOL[type(node.op)]
        yield _Site(index, f"{_sym(node.op)} -> {_sym(new_bool())}", _set_attr("op", new_bool))
    elif isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        new_bin = _BINARY[type(node.op)]
        yield _Site(index, f"{_sym(node.op)} -> {_sym(new_bin())}", _set_attr("op", new_bin))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield _Site(index, "not x -> x", _replace_with_operand)
    elif isinstance(node, ast.Constant):
        yield from _constant_sites(index, node)
    elif isinstance(node, ast.Return) and node.value is not None and not _is_none(node.value):
        yield _Site(index, "return x -> return None", _return_none)
    elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        yield _Site(index, "call statement removed", _replace_with_pass)
    elif isinstance(node, ast.Break):
        yield _Site(index, "break -> continue", _swap_loop_jump(ast.Continue))
    elif isinstance(node, ast.Continue):
        yield _Site(index, "continue -> break", _swap_loop_jump(ast.Break))
    elif isinstance(node, (ast.List, ast.Tuple, ast.Set)) and isinstance(
        getattr(node, "ctx", ast.Load()), ast.Load
    ):
        if len(node.elts) >= 2 and not any(isinstance(e, ast.Starred) for e in node.elts):
            for k in range(len(node.elts)):
                yield _Site(index, f"element {k} dropped", _drop_element(k))
    elif isinstance(node, ast.Dict) and len(node.keys) >= 2 and None not in node.keys:
        for k in range(len(node.keys)):
            yield _Site(index, f"entry {k} dropped", _drop_entry(k))
    elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        for k in range(len(node.decorator_list)):
            yield _Site(index, f"decorator {k} removed", _drop_decorator(k))


def _constant_sites(index: int, node: ast.Constant) -> Iterator[_Site]:
    value = node.value
    if isinstance(value, bool):
        yield _Site(index, f"{value} -> {not value}", _set_constant(not value))
    elif isinstance(value, (int, float)):
        yield _Site(index, f"{value} -> {value + 1}", _set_constant(value + 1))
    elif isinstance(value, str):
        yield _Site(index, f"{_short(value)} -> {_short(f'XX{value}XX')}", _set_constant(f"XX{value}XX"))
    elif isinstance(value, bytes):
        yield _Site(index, f"{value[:12]!r} -> XX", _set_constant(b"XX" + value + b"XX"))


# -- what is left alone ------------------------------------------------------------
def _skipped_nodes(tree: ast.Module) -> set[ast.AST]:
    skipped: set[ast.AST] = set()

    def skip(node: ast.AST | None) -> None:
        if node is not None:
            skipped.update(ast.walk(node))

    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            skip(body[0])  # the docstring
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            skip(node.returns)
            for arg in [*node.args.args, *node.args.kwonlyargs, *node.args.posonlyargs]:
                skip(arg.annotation)
            skip(node.args.vararg.annotation if node.args.vararg else None)
            skip(node.args.kwarg.annotation if node.args.kwarg else None)
        elif isinstance(node, ast.AnnAssign):
            skip(node.annotation)
        elif _left_whole(node):
            skip(node)
        elif isinstance(node, ast.Raise) and node.exc is not None:
            _skip_wording(node.exc, skipped)
        elif isinstance(node, ast.Call) and _is_log_call(node):
            skip(node.args[0] if node.args else None)  # the message
        elif isinstance(node, ast.JoinedStr):
            skipped.update(v for v in node.values if isinstance(v, ast.Constant))
        elif isinstance(node, ast.Subscript) and _is_type_expression(node):
            skip(node)
        elif isinstance(node, ast.Constant) and node.value is Ellipsis:
            skipped.add(node)
    return skipped


def _left_whole(node: ast.AST) -> bool:
    """Statements with nothing to mutate: imports, asserts, ``__all__``, ``TYPE_CHECKING`` blocks."""
    if isinstance(node, (ast.ImportFrom, ast.Import, ast.Assert, ast.Global, ast.Nonlocal)):
        return True
    if isinstance(node, ast.Assign):
        return any(isinstance(t, ast.Name) and t.id in _SKIPPED_NAMES for t in node.targets)
    return isinstance(node, ast.If) and _is_type_checking(node.test)


def _is_type_expression(node: ast.Subscript) -> bool:
    """``Literal[...]``, ``tuple[int, str]``, ``Callable[...]``: types, not values (aliases included)."""
    base = node.value
    name = base.id if isinstance(base, ast.Name) else base.attr if isinstance(base, ast.Attribute) else ""
    return name in _TYPE_GENERICS


def _skip_wording(node: ast.AST, skipped: set[ast.AST]) -> None:
    """The messages of an exception: strings, and the pieces of f-strings."""
    for child in ast.walk(node):
        if isinstance(child, ast.Constant) and isinstance(child.value, str):
            skipped.add(child)


def _is_log_call(node: ast.Call) -> bool:
    func = node.func
    return (
        isinstance(func, ast.Attribute)
        and func.attr in _LOG_METHODS
        and isinstance(func.value, ast.Name)
        and func.value.id in ("log", "logger", "logging")
    )


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


# -- how each site changes --------------------------------------------------------
Apply = Callable[[ast.AST, dict[ast.AST, ast.AST]], None]


def _set_compare(k: int, new: type[ast.cmpop]) -> Apply:
    def apply(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> None:
        assert isinstance(node, ast.Compare)
        node.ops[k] = new()

    return apply


def _set_attr(name: str, new: type[ast.AST]) -> Apply:
    def apply(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> None:
        setattr(node, name, new())

    return apply


def _set_constant(value: str | bytes | bool | int | float) -> Apply:
    def apply(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> None:
        assert isinstance(node, ast.Constant)
        node.value = value

    return apply


def _replace(node: ast.AST, parents: dict[ast.AST, ast.AST], new: ast.AST) -> None:
    parent = parents[node]
    for field, value in ast.iter_fields(parent):
        if value is node:
            setattr(parent, field, new)
            return
        if isinstance(value, list) and any(item is node for item in value):
            value[next(i for i, item in enumerate(value) if item is node)] = new
            return


def _replace_with_operand(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> None:
    assert isinstance(node, ast.UnaryOp)
    _replace(node, parents, node.operand)


def _replace_with_pass(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> None:
    _replace(node, parents, ast.Pass())


def _return_none(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> None:
    assert isinstance(node, ast.Return)
    node.value = ast.Constant(None)


def _swap_loop_jump(new: type[ast.stmt]) -> Apply:
    def apply(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> None:
        _replace(node, parents, new())

    return apply


def _drop_element(k: int) -> Apply:
    def apply(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> None:
        assert isinstance(node, (ast.List, ast.Tuple, ast.Set))
        del node.elts[k]

    return apply


def _drop_entry(k: int) -> Apply:
    def apply(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> None:
        assert isinstance(node, ast.Dict)
        del node.keys[k], node.values[k]

    return apply


def _drop_decorator(k: int) -> Apply:
    def apply(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> None:
        assert isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        del node.decorator_list[k]

    return apply


# -- descriptions ------------------------------------------------------------------
_SYMBOLS: dict[type[ast.AST], str] = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.And: "and",
    ast.Or: "or",
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.LShift: "<<",
    ast.RShift: ">>",
}


def _sym(op: ast.AST) -> str:
    return _SYMBOLS.get(type(op), type(op).__name__)


def _short(text: str) -> str:
    return repr(text if len(text) <= 24 else text[:21] + "...")
