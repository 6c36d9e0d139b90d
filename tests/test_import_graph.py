"""The package's import graph has no cycles, counting imports inside functions (#18).

Edges are read from the source (nothing is imported): every ``import`` and ``from ... import``
anywhere in a module, functions included, except under ``if TYPE_CHECKING:`` (never run), plus
the implied edge to each package above an imported module (importing ``a.b.c`` runs
``a/b/__init__.py`` first) other than the importer's own packages. The root
``lightning_args/__init__.py`` is the public facade: it imports from everywhere and nothing
inside the package imports it, which the test checks too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import REPO

PACKAGES = ("lightning_args", "hydra_plugins")


def module_names(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    """Each module's dotted name and file, for every ``.py`` under ``packages`` of ``root``."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _runtime_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (i for n in node.orelse for i in _runtime_imports(n))
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        yield from _runtime_imports(node)


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of ``modules`` that importing ``name`` (at ``path``) may import."""
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    for node in _runtime_imports(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:  # relative: from the module's package
            anchor = name.split(".")
            anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
            base = ".".join([*anchor, *([base] if base else [])])
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            targets.add(sub if sub in modules else base)
    # Importing a.b.c runs a/b/__init__.py first, unless that package is one of the importer's
    # own (it is being imported already).
    own = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
    for target in list(targets):
        parts = target.split(".")
        targets.update(".".join(parts[:i]) for i in range(2, len(parts)))
    return {t for t in targets - own if t in modules and t != name}


def cycles(modules: dict[str, Path], facade: str) -> list[list[str]]:
    """Every cycle of the import graph (one per strongly connected component), as a path."""
    graph = {name: imports_of(name, path, modules) - {facade} for name, path in modules.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return found


def test_the_package_has_no_import_cycles() -> None:
    modules = module_names(REPO, PACKAGES)
    assert "lightning_args.run.app" in modules  # the walk found the tree
    assert cycles(modules, facade="lightning_args") == []


def test_nothing_inside_the_package_imports_its_facade() -> None:
    modules = module_names(REPO, ("lightning_args",))
    importers = [
        name
        for name, path in modules.items()
        if name != "lightning_args" and "lightning_args" in imports_of(name, path, modules)
    ]
    assert importers == []


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        pytest.param(
            {"a.py": "def f():\n    import pkg.b\n", "b.py": "from pkg import a\n"},
            [["pkg.a", "pkg.b"]],
            id="function-level-cycle-found",
        ),
        pytest.param(
            {"a.py": "from .b import x\n", "b.py": "from . import a\n"},
            [["pkg.a", "pkg.b"]],
            id="relative-cycle-found",
        ),
        pytest.param(
            {
                "sub/__init__.py": "from pkg.a import y\n",
                "sub/m.py": "",
                "a.py": "import pkg.sub.m\n",
            },
            [["pkg.a", "pkg.sub"]],  # a imports sub.m, which runs sub/__init__.py first
            id="through-a-package-init",
        ),
        pytest.param(
            {
                "a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.b\n",
                "b.py": "import pkg.a\n",
            },
            [],
            id="type-checking-only-is-no-cycle",
        ),
    ],
)
def test_the_checker_finds_a_cycle_where_there_is_one(
    tmp_path: Path, files: dict[str, str], expected: list[list[str]]
) -> None:
    """The control: the same checker on small packages with and without a cycle."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    for name, text in files.items():
        (tmp_path / "pkg" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "pkg" / name).write_text(text)
    assert cycles(module_names(tmp_path, ("pkg",)), facade="pkg") == expected
