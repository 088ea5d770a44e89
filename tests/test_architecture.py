"""The package's layers (docs/architecture.md) hold: import-linter's contracts in pyproject.toml, and no name
defined in two modules."""

from __future__ import annotations

import ast
import importlib
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pytest_llmgate"
LINT_IMPORTS = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
                "sys.exit(lint_imports_command())"]

#: Names more than one module defines on purpose: every built-in provider module's factory (found by that name),
#: a module's own type variable, ``__all__``.
CONVENTION = {"FACTORY", "T", "__all__"}


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LINT_IMPORTS, "--config", str(ROOT / "pyproject.toml"), "--no-cache"], cwd=root,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120)


def test_the_layers_the_pytest_rule_and_no_cycle_hold() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken." in result.stdout


@pytest.mark.parametrize(("module", "line", "contract"), [
    ("model/vocab.py", "import pytest_llmgate.engine.session", "Layers"),
    ("reports/terminal.py", "import pytest_llmgate.engine.session", "Layers"),
    ("records/run.py", "import pytest", "Only the plugin imports pytest"),
    # a cycle within a layer, even through an import made for the type checker only
    ("records/diff.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pytest_llmgate.records.comparison",
     "No import cycle"),
])
def test_a_wrong_import_breaks_a_contract(tmp_path: Path, module: str, line: str, contract: str) -> None:
    shutil.copytree(PACKAGE, tmp_path / "pytest_llmgate", ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "pytest_llmgate" / module
    target.write_text(target.read_text() + f"\n{line}\n")
    result = _lint(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "0 broken" not in result.stdout  # an import up the layers is a cycle between folders as well
    assert contract in result.stdout.split("Broken contracts")[1]


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of a module graph (its strongly connected components of more than one module)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for imported in graph.get(module, ()):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = [stack.pop()]
            while component[-1] != module:
                component.append(stack.pop())
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return cycles


def test_no_module_imports_itself_back() -> None:
    """Module by module, a package's ``__init__`` included and imports made for the type checker only counted
    (import-linter's contract compares sibling modules and folders, not a package with its own modules)."""
    import grimp

    graph = grimp.build_graph("pytest_llmgate")
    assert import_cycles({module: graph.find_modules_directly_imported_by(module) for module in graph.modules}) == []
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_package_offers_the_same_names_at_run_time_and_to_type_checkers() -> None:
    """``pytest_llmgate.__all__`` (loaded when used) and the imports type checkers read (``X as X``) name the same
    objects, from the modules that define them."""
    import pytest_llmgate

    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    static = {alias.name: node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
              for alias in node.names if alias.asname == alias.name}
    assert sorted(static) == pytest_llmgate.__all__
    for name, module in static.items():
        assert getattr(importlib.import_module(module), name) is getattr(pytest_llmgate, name)


def test_no_name_is_defined_in_two_modules() -> None:
    """Private names too: two helpers of one name are either one helper written twice or two that need names."""
    where: dict[str, list[str]] = defaultdict(list)
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names = [node.name]
            elif isinstance(node, ast.Assign):
                names = [target.id for target in node.targets if isinstance(target, ast.Name)]
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names = [node.target.id]
            else:
                continue
            for name in names:
                if name not in CONVENTION:
                    where[name].append(str(path.relative_to(ROOT)))
    twice = {name: paths for name, paths in where.items() if len(paths) > 1}
    assert twice == {}


def test_no_test_imports_a_private_name_of_the_package() -> None:
    """Tests use the package as its modules offer it: a private module or helper can be renamed without touching a
    test."""
    private = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pytest_llmgate"):
                module = node.module or ""
                private += [f"{path.name}:{node.lineno} {module}.{alias.name}" for alias in node.names
                            if alias.name.startswith("_") or any(part.startswith("_") for part in module.split("."))]
    assert private == []
