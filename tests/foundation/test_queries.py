"""Named SQL: every query in a `queries.sql` is used, and every lookup names a query.

A lookup is `X["name"]` where `X = load_queries("package")` in the module, or `X` is imported
from a module that defines it so. A lookup with a computed key cannot be checked and is
refused, so a typo is found here and not as a `KeyError` in production.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from controlplane.db.queries import load_queries

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "controlplane"


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")


def _query_dicts(tree: ast.Module) -> dict[str, str]:
    """Names bound at module level to `load_queries("package")`: name -> package."""
    found: dict[str, str] = {}
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id == "load_queries"
        ):
            (arg,) = node.value.args
            assert isinstance(arg, ast.Constant), ast.unparse(node)
            for target in node.targets:
                assert isinstance(target, ast.Name)
                found[target.id] = str(arg.value)
    return found


def _scan() -> tuple[dict[str, set[str]], list[str]]:
    """(package -> names looked up, problems)."""
    trees = {_module_name(p): (p, ast.parse(p.read_text())) for p in PACKAGE.rglob("*.py")}
    defined = {module: _query_dicts(tree) for module, (_, tree) in trees.items()}
    used: dict[str, set[str]] = defaultdict(set)
    problems: list[str] = []
    for module, (path, tree) in trees.items():
        dicts = dict(defined[module])
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in defined:
                for alias in node.names:
                    if alias.name in defined[node.module]:
                        dicts[alias.asname or alias.name] = defined[node.module][alias.name]
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Subscript)
                and isinstance(node.value, ast.Name)
                and node.value.id in dicts
            ):
                continue
            where = f"{path.relative_to(SRC)}:{node.lineno}"
            key = node.slice
            if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                problems.append(f"{where}: computed query name {ast.unparse(node)}")
                continue
            package = dicts[node.value.id]
            if key.value not in load_queries(package):
                problems.append(f"{where}: {package} has no query {key.value!r}")
            used[package].add(key.value)
    return used, problems


def test_every_query_lookup_names_an_existing_query() -> None:
    used, problems = _scan()
    assert problems == []
    assert used, "the scan found no lookups at all"


def test_every_named_query_is_used() -> None:
    used, _ = _scan()
    unused = {}
    for sql in PACKAGE.rglob("queries.sql"):
        package = _module_name(sql.parent / "__init__.py")
        names = set(load_queries(package)) - used.get(package, set())
        if names:
            unused[package] = sorted(names)
    assert unused == {}
