"""Imports only point down, and no module imports its way back to itself (CONVENTIONS.md)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("domain", "storage", "handlers", "reminders", "crm", "bot")
SURFACES = ("handlers", "reminders", "crm")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    """Return every module of the application packages (and app.py) by dotted name."""
    modules = {"app": ROOT / "app.py"}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                modules[_module_name(path)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(nodes: list[ast.stmt]) -> Iterator[ast.AST]:
    # An `if TYPE_CHECKING:` body never runs, so it is no import edge (its `else:` is).
    for node in nodes:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _runtime_nodes(node.orelse)
            continue
        yield node
        for field in ("body", "orelse", "finalbody", "handlers"):
            children = getattr(node, field, None)
            if isinstance(children, list):
                stmts = [c for c in children if isinstance(c, ast.stmt)]
                stmts += [s for c in children if isinstance(c, ast.ExceptHandler) for s in c.body]
                yield from _runtime_nodes(stmts)


def runtime_imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Return the project modules `name` imports when it runs (at import or inside a call)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _runtime_nodes(tree.body):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from handlers import blocks` imports the module handlers.blocks; a name that
            # is no module (`from handlers import after_ack`) comes from the package itself.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _layer(module: str) -> str:
    return module.split(".")[0]


GRAPH = {
    name: runtime_imports(name, path, set(project_modules()))
    for name, path in project_modules().items()
}
EDGES = sorted((source, target) for source, targets in GRAPH.items() for target in targets)


def _refused(source: str, target: str) -> str | None:
    """Return why the import source -> target breaks the layering, or None when it may."""
    low, high = _layer(source), _layer(target)
    if low == high:
        return None
    if low in ("domain", "storage") and high in (*SURFACES, "bot"):
        return f"{low} imports nothing from {high}"
    if low in SURFACES and high in SURFACES:
        return f"{low} and {high} may not import each other; move what both need down"
    if high == "bot" and source != "app":
        return "only app.py imports bot"
    return None


def test_the_graph_sees_the_known_imports() -> None:
    # A reader that found no edges would pass every rule below.
    assert "domain.dates" in GRAPH["handlers.blocks"]
    assert "bot.cli" in GRAPH["app"]
    assert len(EDGES) > 100


def test_an_import_under_type_checking_is_not_an_edge(tmp_path: Path) -> None:
    module = tmp_path / "module.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from bot.app import Services\n"
        "def later() -> None:\n    from storage import database\n"
    )
    assert runtime_imports("handlers.module", module, {"bot.app", "storage.database"}) == {
        "storage.database"
    }


@pytest.mark.parametrize(("source", "target"), EDGES, ids=[f"{s}->{t}" for s, t in EDGES])
def test_imports_point_down(source: str, target: str) -> None:
    assert _refused(source, target) is None, f"{source} -> {target}: {_refused(source, target)}"


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """Return one import circle in `graph` as a path (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (found := visit(target)) is not None:
                return found
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (found := visit(module)) is not None:
            return found
    return None


def test_a_circle_through_three_modules_is_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_import_circle() -> None:
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize(
    ("source", "target", "allowed"),
    [
        ("reminders.chase", "handlers.reminder_blocks", False),
        ("handlers.follow_ups", "reminders.delivery", False),
        ("domain.deals", "reminders.checks", False),
        ("storage.database", "bot.settings", False),
        ("reminders.email.setup", "bot.settings", False),
        ("handlers.blocks", "domain.views", True),
        ("reminders.chase", "storage.facts", True),
        ("app", "bot.cli", True),
        ("bot.app", "handlers", True),
    ],
)
def test_the_rules_refuse_what_the_conventions_forbid(
    source: str, target: str, allowed: bool
) -> None:
    assert (_refused(source, target) is None) is allowed
