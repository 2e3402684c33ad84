"""The import layers (docs/layout.md): no sub-package of stegonode imports one above it, at import
time or inside a function, and no package has an import loop among its modules at import time.
Read from the source with ast: nothing is imported, so the answer does not depend on what an
earlier test loaded."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Lowest first: a module may import its own layer and those below it, never one above.
# `cli` is the command line, stegonode.cli (formerly stegonode.node.cli: both paths map to it).
LAYERS = ["errors", "models", "codecs", "dicom", "segmenters", "handlers", "node", "web", "training", "cli"]
CLI = ("stegonode.cli", "stegonode.node.cli")


def package_dirs(root: Path = ROOT) -> dict[str, Path]:
    """stegonode's sub-packages as pyproject.toml maps them: name -> folder."""
    import tomllib

    mapping = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    return {name: root / folder for name, folder in mapping.items() if name.count(".") == 1}


def layer_of(module: str) -> str:
    if any(module == cli or module.startswith(cli + ".") for cli in CLI):
        return "cli"
    return module.split(".")[1]


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the module imported (a package's __init__ is the package's name)
    at_import_time: bool  # run when the source is imported (not inside a function or TYPE_CHECKING)
    line: int


def modules(dirs: dict[str, Path]) -> dict[str, Path]:
    """Module name -> file, for every module of the given packages (migrations excluded: Alembic
    loads them by path)."""
    found = {}
    for package, folder in dirs.items():
        for path in sorted(folder.rglob("*.py")):
            if "migrations" in path.relative_to(folder).parts:
                continue
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _statements(body: list[ast.stmt], at_import_time: bool) -> Iterator[tuple[ast.stmt, bool]]:
    """Every statement, with whether it runs when the module is imported."""
    for statement in body:
        yield statement, at_import_time
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
            for child in ast.walk(statement):
                if isinstance(child, ast.stmt) and child is not statement:
                    yield child, False
        elif isinstance(statement, ast.If) and _is_type_checking(statement.test):
            yield from _statements(statement.body, False)
            yield from _statements(statement.orelse, at_import_time)
        else:
            for field in ("body", "orelse", "finalbody", "handlers"):
                children = getattr(statement, field, None) or []
                nested = [child for handler in children for child in handler.body] if field == "handlers" else children
                yield from _statements([s for s in nested if isinstance(s, ast.stmt)], at_import_time)


def imports(module: str, path: Path, known: set[str]) -> list[Import]:
    """The stegonode modules one module imports."""
    is_package = path.name == "__init__.py"
    found = []
    for statement, at_import_time in _statements(ast.parse(path.read_text(encoding="utf-8")).body, True):
        targets: list[str] = []
        if isinstance(statement, ast.Import):
            targets = [alias.name for alias in statement.names]
        elif isinstance(statement, ast.ImportFrom):
            if statement.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[:len(base) - statement.level + 1]
                origin = ".".join(base + ([statement.module] if statement.module else []))
            else:
                origin = statement.module or ""
            # `from package import name`: the submodule `name` where there is one, else the package
            targets = [f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in known else origin
                       for alias in statement.names]
        for target in targets:
            if target.startswith("stegonode."):
                found.append(Import(module, target, at_import_time, statement.lineno))
    return found


def all_imports(root: Path = ROOT) -> list[Import]:
    found = modules(package_dirs(root))
    return [edge for module, path in found.items() for edge in imports(module, path, set(found))]


def upward_imports(edges: list[Import]) -> list[str]:
    wrong = []
    for edge in edges:
        source, target = layer_of(edge.source), layer_of(edge.target)
        for name in (source, target):
            if name not in LAYERS:
                wrong.append(f"stegonode.{name} has no layer: add it to LAYERS in tests/test_layers.py")
        if source in LAYERS and target in LAYERS and LAYERS.index(target) > LAYERS.index(source):
            wrong.append(f"{edge.source} (line {edge.line}) imports {edge.target}: {source} is below {target}")
    return sorted(set(wrong))


def import_loops(edges: list[Import]) -> list[list[str]]:
    """Strongly connected groups of modules of one package importing each other at import time
    (Tarjan's algorithm); a module importing itself counts too."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        if edge.at_import_time and edge.source.split(".")[:2] == edge.target.split(".")[:2]:
            graph.setdefault(edge.source, set()).add(edge.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    loops = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == module:
                    break
            if len(group) > 1 or module in graph.get(module, ()):
                loops.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(loops)


def test_no_package_imports_one_above_it() -> None:
    edges = all_imports()
    assert edges, "no imports found: the scan is broken"
    assert upward_imports(edges) == []


def test_no_import_loop_within_a_package() -> None:
    assert import_loops(all_imports()) == []


def test_every_package_has_a_layer() -> None:
    assert set(package_dirs()) - {f"stegonode.{name}" for name in LAYERS} == set()
    assert layer_of("stegonode.node.cli.objects") == layer_of("stegonode.cli.objects") == "cli"
    assert layer_of("stegonode.node.service") == "node"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A small package tree with the same pyproject.toml mapping as the real one."""
    (tmp_path / "pyproject.toml").write_text(
        '[tool.setuptools]\npackage-dir = {"stegonode.errors" = "errors", "stegonode.codecs" = "codecs",'
        ' "stegonode.node" = "node"}\n')
    for folder in ("errors", "codecs", "node", "node/cli"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "__init__.py").write_text("")
    (tmp_path / "codecs" / "a.py").write_text("from stegonode.errors import StegonodeError\nfrom . import b\n")
    (tmp_path / "codecs" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import X\n"
        "def later():\n    from stegonode.codecs import a\n")
    (tmp_path / "node" / "cli" / "__init__.py").write_text("from stegonode.node import service\n")
    (tmp_path / "node" / "service.py").write_text("import stegonode.codecs.a\n")
    return tmp_path


def test_a_clean_tree_passes(tree: Path) -> None:
    edges = all_imports(tree)
    assert {(edge.source, edge.target, edge.at_import_time) for edge in edges} == {
        ("stegonode.codecs.a", "stegonode.errors", True), ("stegonode.codecs.a", "stegonode.codecs.b", True),
        ("stegonode.codecs.b", "stegonode.codecs.a", False),
        ("stegonode.node.cli", "stegonode.node.service", True), ("stegonode.node.service", "stegonode.codecs.a", True),
    }
    assert upward_imports(edges) == [] and import_loops(edges) == []


def test_an_upward_import_and_a_loop_are_caught(tree: Path) -> None:
    (tree / "codecs" / "b.py").write_text("from .a import X\n")
    (tree / "errors" / "__init__.py").write_text("def f():\n    from stegonode.codecs import a\n")
    (tree / "node" / "service.py").write_text("from stegonode.node.cli import main\n")
    edges = all_imports(tree)
    assert upward_imports(edges) == [
        "stegonode.errors (line 2) imports stegonode.codecs.a: errors is below codecs",
        "stegonode.node.service (line 1) imports stegonode.node.cli: node is below cli",
    ]
    assert import_loops(edges) == [["stegonode.codecs.a", "stegonode.codecs.b"],
                                   ["stegonode.node.cli", "stegonode.node.service"]]
