"""The import graph of styletransfer/: no cycle, and generic code names no method."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from styletransfer.registry import BUILTIN_METHODS

PACKAGE = Path(__file__).resolve().parents[2] / "styletransfer"
# A method's own modules (and the registry that lists them) may name it; nothing else may.
METHOD_MODULES = {
    "styletransfer.registry",
    "styletransfer.config",  # the default method, and which methods each setting applies to
    "styletransfer.options",  # each method's own options
    "styletransfer.methods.gatys",
    "styletransfer.methods.dpst",
    "styletransfer.methods.photo_fast",
    "styletransfer.methods.neural",
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def import_graph() -> dict[str, set[str]]:
    """Module -> the styletransfer modules it imports, at any depth of its code."""
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    package = _package_of(module, path).split(".")
                    anchor = package[: len(package) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.append(sub if sub in modules else base)
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != module:
                    graph[module].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_graph_sees_the_edges_that_exist():
    graph = import_graph()
    assert "styletransfer.config" in graph["styletransfer.engine"]
    assert "styletransfer.registry" in graph["styletransfer.config"]
    assert "styletransfer.methods.neural" in graph["styletransfer.methods.gatys"]  # a lazy one


def test_no_import_cycle_inside_styletransfer():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle or [])


def test_the_config_and_registry_import_no_method():
    graph = import_graph()
    for module in ("styletransfer.config", "styletransfer.registry"):
        reach, todo = set(), [module]
        while todo:
            for nxt in graph[todo.pop()] - reach:
                reach.add(nxt)
                todo.append(nxt)
        assert not {
            m for m in reach if m.startswith(("styletransfer.methods", "styletransfer.fast"))
        }


@pytest.mark.parametrize("name", [spec.name for spec in BUILTIN_METHODS])
def test_generic_code_names_no_method(name):
    own = {m for m in _modules() if m.startswith("styletransfer.fast")} | METHOD_MODULES
    for module, path in _modules().items():
        if module in own:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and node.value == name:
                pytest.fail(f"{path.name}:{node.lineno} names method {name!r}")
