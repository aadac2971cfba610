"""The layers you can see in the folders are the layers the imports keep (README, "Architecture").

Every import of every module (top level or inside a function, so a lazy import cannot hide an
upward dependency) is read from the AST and checked against the allowed direction; then the
module graph must have no cycle. No module may grow past MAX_LINES.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("glide", "feature_repo", "glide_model", "streams", "infra", "glide_app", "benchmarks")
MAX_LINES = 400

# Module prefix -> the prefixes it may import (besides itself). The longest matching prefix wins.
ALLOWED: dict[str, tuple[str, ...]] = {
    "glide": (),  # foundation: settings, the habit rule, catalog DB, synthetic world
    "feature_repo": (),  # Feast definitions: feast only
    "glide_model": ("glide.config", "glide.habits"),  # the model library: no CLI, no DB, no world
    "streams": ("glide", "glide_model", "feature_repo"),  # the online runtime
    "infra": ("glide", "glide_model", "streams", "feature_repo"),  # stack launcher, vLLM env
    "glide_app": ("glide", "glide_model", "streams", "infra", "feature_repo"),  # CLI, demo, jobs
    "benchmarks": ("glide", "glide_model", "streams", "infra", "feature_repo", "glide_app"),
}


def module_files() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            if ".venv" in path.parts or "migrations" in path.parts:
                continue
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


MODULES = module_files()


def _imported_names(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """(dotted name, line) for every import, relative ones made absolute; `from a import b` yields
    `a.b` when that is a module of ours, else `a`."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: None if is_package else -1]
                base = base[: len(base) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                child = f"{source}.{alias.name}"
                yield (child if child in MODULES else source), node.lineno


def _ours(name: str) -> str | None:
    """The module of ours that ``name`` lands in (its longest known prefix), or None."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph() -> dict[str, dict[str, int]]:
    graph: dict[str, dict[str, int]] = {m: {} for m in MODULES}
    for module, path in MODULES.items():
        for name, line in _imported_names(module, path):
            target = _ours(name)
            if target is not None and target != module:
                graph[module].setdefault(target, line)
    return graph


def _rule_for(module: str) -> tuple[str, tuple[str, ...]]:
    key = max((p for p in ALLOWED if module == p or module.startswith(p + ".")), key=len)
    return key, ALLOWED[key]


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_every_module_belongs_to_a_layer() -> None:
    assert "glide_app.cli" in MODULES and "glide.config" in MODULES
    for module in MODULES:
        assert _rule_for(module)


def test_imports_follow_the_layers() -> None:
    wrong = []
    for module, targets in import_graph().items():
        layer, allowed = _rule_for(module)
        for target, line in targets.items():
            if not _within(target, (layer, *allowed)):
                wrong.append(f"{MODULES[module].relative_to(REPO)}:{line} ({layer}) imports {target}")
    assert not wrong, "imports against the layer direction:\n" + "\n".join(sorted(wrong))


def find_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


def test_cycle_finder_finds_a_planted_cycle() -> None:
    graph = {"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}
    assert find_cycles(graph) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b": 1}, "b": {}}) == []


def test_no_import_cycles() -> None:
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_stay_short(module: str) -> None:
    lines = len(MODULES[module].read_text().splitlines())
    assert lines <= MAX_LINES, f"{MODULES[module].relative_to(REPO)} has {lines} lines (> {MAX_LINES}): split it"
