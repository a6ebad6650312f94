"""House rules of the code itself, checked by reading the source."""

from __future__ import annotations

import ast
from pathlib import Path

import corral.statemachine

STATEMACHINE = Path(corral.statemachine.__file__).parent


def _modules() -> dict[str, ast.Module]:
    return {
        path.stem: ast.parse(path.read_text(), filename=str(path)) for path in sorted(STATEMACHINE.glob("*.py"))
    }


def foreign_private_attributes(tree: ast.Module) -> list[str]:
    """`other._x` (not dunder) read or written where `other` is not `self` or `cls`."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        attr = node.attr
        if not attr.startswith("_") or (attr.startswith("__") and attr.endswith("__")):
            continue
        if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            continue
        found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def test_statemachine_reads_no_foreign_private_attribute() -> None:
    """Each object of the lifecycle is reached through what it offers, never its privates."""
    offences = {name: found for name, tree in _modules().items() if (found := foreign_private_attributes(tree))}
    assert offences == {}


def _imports(tree: ast.Module) -> set[str]:
    """The corral.statemachine modules a module imports, TYPE_CHECKING imports included."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "corral.statemachine":
                names.update(alias.name for alias in node.names)
            elif node.module.startswith("corral.statemachine."):
                names.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("corral.statemachine."):
                    names.add(alias.name.split(".")[2])
    return names


def test_statemachine_has_no_import_cycle() -> None:
    graph = {name: _imports(tree) for name, tree in _modules().items()}

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), list(graph.get(start, ()))
        while todo:
            name = todo.pop()
            if name == goal:
                return True
            if name not in seen:
                seen.add(name)
                todo.extend(graph.get(name, ()))
        return False

    assert [name for name in graph if reaches(name, name)] == []
    assert [name for name in graph if name != "runtime" and reaches(name, "runtime")] == []
