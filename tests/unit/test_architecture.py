"""The layering of talkvid_ops, read from the source's import graph (every import statement, also those inside
functions; only `if TYPE_CHECKING:` blocks, which never run, are left out).

- no import cycle between modules, nor between packages;
- stage packages depend on catalog/ and media/ (and the small shared modules), never on one another, except export
  reading curate's and caption's results; they never import the orchestration layer that runs them (registry, CLI, pipeline, runners);
- catalog/ and media/ import no stage package.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "talkvid_ops"
STAGE_PACKAGES = {"crawl", "segment", "score", "caption", "curate", "export"}
ALLOWED_BETWEEN_STAGES = {("export", "curate"), ("export", "caption")}
ORCHESTRATION = {"stages", "cli", "pipeline", "runners", "dashboard", "demo"}
FOUNDATION = {"catalog", "media"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in (ROOT / PACKAGE).rglob("*.py")}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imported_names(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    names: set[str] = set()
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in names if name == PACKAGE or name.startswith(PACKAGE + ".")}


@pytest.fixture(scope="module")
def module_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        targets = set()
        for name in _imported_names(tree, module, path.name == "__init__.py"):
            while name not in modules:  # `from pkg import name` names an attribute, not a module
                name = name.rpartition(".")[0]
            if name != module:
                targets.add(name)
        graph[module] = targets
    return graph


def _package_of(module: str) -> str:
    """A subpackage of talkvid_ops is one node; a top-level module is its own node."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else PACKAGE


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _package_graph(module_graph: dict[str, set[str]]) -> dict[str, set[str]]:
    packages: dict[str, set[str]] = defaultdict(set)
    for module, targets in module_graph.items():
        source = _package_of(module)
        packages[source].update(_package_of(t) for t in targets if _package_of(t) not in (source, PACKAGE))
    return packages


def test_the_graph_is_read_from_the_source(module_graph):
    # the reader sees lazy imports inside functions and resolves `from package import module`
    assert "talkvid_ops.cli" in module_graph
    assert any(target.startswith("talkvid_ops.catalog") for target in module_graph["talkvid_ops.context"])
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_between_modules(module_graph):
    assert _cycles(module_graph) == []


def test_no_import_cycle_between_packages(module_graph):
    assert _cycles(_package_graph(module_graph)) == []


def test_stage_packages_meet_only_through_catalog_and_media(module_graph):
    wrong = []
    for source, targets in _package_graph(module_graph).items():
        for target in targets:
            between_stages = source in STAGE_PACKAGES and target in STAGE_PACKAGES and (source, target) not in ALLOWED_BETWEEN_STAGES
            stage_runs_its_runner = source in STAGE_PACKAGES and target in ORCHESTRATION
            foundation_on_stage = source in FOUNDATION and target in STAGE_PACKAGES | ORCHESTRATION
            if between_stages or stage_runs_its_runner or foundation_on_stage:
                culprits = sorted(f"{m} -> {t}" for m, ts in module_graph.items() if _package_of(m) == source for t in ts if _package_of(t) == target)
                wrong.append(f"{source} -> {target}: {', '.join(culprits)}")
    assert wrong == []
