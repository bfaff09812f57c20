"""The package's layers, read from its imports: data flows one way and the imports say so.

A module may import from its own layer and the layers below it, never
above. Every import counts, also one inside a function or under
``TYPE_CHECKING``: a layer that needs a name from above is a layer in the
wrong place.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gateway"

# Bottom to top. A name stands for the module and everything under it.
LAYERS: list[tuple[str, ...]] = [
    (
        "gateway.parsing",
        "gateway.jsontext",
        "gateway.tasks",
        "gateway.config",
        "gateway.redisconn",
        "gateway.users",
        "gateway.auth",
        "gateway.ops",
    ),
    ("gateway.hubspot",),
    ("gateway.outbox",),
    ("gateway.model",),
    ("gateway.wire",),
    ("gateway.broker",),
    ("gateway.tracker",),
    ("gateway.sources",),
    ("gateway.dial",),
    ("gateway.recordings",),
    ("gateway.calllog",),
    ("gateway.runtime",),
    ("gateway.http",),
    ("gateway.assemble", "gateway.standin"),
    ("gateway.cli", "gateway.__main__"),
]

# Third-party packages that belong to one edge only.
EDGE_PACKAGES = {
    "starlette": ("gateway.http", "gateway.assemble", "gateway.standin"),
    "redis": (
        "gateway.redisconn",
        "gateway.broker.redis",
        "gateway.broker.redis_coordination",
        "gateway.outbox.redis",
        "gateway.hubspot.redis_store",
        "gateway.hubspot.redis_pacer",
    ),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            # "from gateway.http import sessions" imports the module gateway.http.sessions.
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _layer(module: str) -> int | None:
    for index, names in enumerate(LAYERS):
        if any(_within(module, name) for name in names):
            return index
    return None


MODULES = {_module_name(path): _imports(path) for path in sorted(PACKAGE.rglob("*.py"))}


def test_every_module_has_a_layer() -> None:
    assert [m for m in MODULES if m != "gateway" and _layer(m) is None] == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_a_module_imports_nothing_from_a_layer_above_its_own(module: str) -> None:
    own = _layer(module)
    if own is None:
        return  # the package's own __init__: a docstring and a version
    upward = sorted(name for name in MODULES[module] if name in MODULES and (_layer(name) or 0) > own)
    assert upward == [], f"{module} (layer {own}) imports from above: {upward}"


def test_sources_hand_signals_to_the_tracker_and_never_touch_the_broker() -> None:
    touching = sorted(
        (module, name)
        for module, names in MODULES.items()
        if _within(module, "gateway.sources")
        for name in names
        if _within(name, "gateway.broker")
    )
    assert touching == []


def test_the_model_and_the_wire_format_import_nothing_but_the_model() -> None:
    allowed = ("gateway.model", "gateway.parsing")
    for module in ("gateway.model", "gateway.wire"):
        ours = {name for name in MODULES[module] if _within(name, "gateway")}
        beyond = sorted(name for name in ours if not any(_within(name, a) for a in allowed))
        assert beyond == [], f"{module} imports {beyond}"


@pytest.mark.parametrize("package", sorted(EDGE_PACKAGES))
def test_a_third_party_edge_is_imported_only_at_its_edge(package: str) -> None:
    edges = EDGE_PACKAGES[package]
    outside = sorted(
        module
        for module, names in MODULES.items()
        if any(_within(name, package) for name in names) and not any(_within(module, edge) for edge in edges)
    )
    assert outside == [], f"{package} imported outside {edges}: {outside}"


def test_no_module_is_imported_by_a_name_in_a_string() -> None:
    # import_module hides a dependency from readers and from these checks.
    hidden = sorted(m for m, names in MODULES.items() if "importlib" in names)
    assert hidden == []
