"""Import hygiene: every module imports on its own, and controlplane.* has no import cycle.

The graph is built from the source (module level and inside functions alike), so a cycle
hidden in a function-level import is found before someone moves that import to the top.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import controlplane

PACKAGE = Path(controlplane.__file__).parent


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the controlplane modules it imports (a package's __init__ counts, since
    importing `a.b.c` runs `a.b` first)."""
    known = modules()

    def owner(name: str) -> str | None:  # the module that defines `name`
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in known.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                names = [f"{base}.{alias.name}" for alias in node.names] + [base]
            for name in names:
                if name.split(".")[0] == "controlplane" and (target := owner(name)):
                    targets.add(target)
        # ... and every package on the way to each target, except our own ancestors
        for target in list(targets):
            while "." in target:
                target = target.rpartition(".")[0]
                targets.add(target)
        graph[module] = {
            t
            for t in targets
            if t != module and t != "controlplane" and not module.startswith(t + ".")
        }
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_function_level_imports() -> None:
    graph = import_graph()
    assert "controlplane.runtime" in graph["controlplane.app"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_among_controlplane_modules() -> None:
    assert cycles(import_graph()) == []


# Each module imported after every controlplane module was forgotten: what it needs, it
# imports itself. Third-party packages stay loaded, so the whole run takes a few seconds.
_ALONE = """
import importlib, sys, traceback
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "controlplane" or m.startswith("controlplane.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failed.append(name + ": " + traceback.format_exc(limit=-3))
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def test_every_module_imports_alone() -> None:
    names = sorted(modules())
    result = subprocess.run(
        [sys.executable, "-c", _ALONE, *names], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
