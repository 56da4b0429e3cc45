"""Named SQL blocks: a domain's queries live in a `.sql` file as `-- name: x` blocks.

Loaded once per module (at first use, not at import of the package) and called by name, so
the SQL stays reviewable as SQL and never gets built with string formatting.
"""

from __future__ import annotations

import re
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


def parse_queries(text: str) -> dict[str, str]:
    parts = _NAME.split(text)
    queries: dict[str, str] = {}
    # parts = [preamble, name1, body1, name2, body2, ...]
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        sql = body.strip()
        if name in queries:
            raise ValueError(f"duplicate query name {name!r}")
        queries[name] = sql
    return queries


def load_queries(package: str, filename: str = "queries.sql") -> dict[str, str]:
    return parse_queries(resources.files(package).joinpath(filename).read_text())
