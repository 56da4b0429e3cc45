"""Shared fixtures: a real PostgreSQL, a fresh database per test, the app on it.

The embedded server starts once per test session (or `TEST_DATABASE_URL` names a server to
use instead). Migrations run once into a template database; each test gets its own database
cloned from it, which takes tens of milliseconds.
"""

from __future__ import annotations

import itertools
import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql

from controlplane.config import Settings

TEMPLATE_DB = "cp_template"
_counter = itertools.count()

ADMIN_TOKEN = "admin-" + "x7Qp2" * 8
ENCRYPTION_KEY = secrets.token_hex(32)
JWT_SECRET = secrets.token_hex(32)


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """URL of a maintenance database on the test server."""
    external = os.environ.get("TEST_DATABASE_URL")
    if external:
        yield external
        return
    from controlplane.db.embedded import restart_embedded, start_embedded

    pgdata = Path(tempfile.mkdtemp(prefix="cp-test-pg-"))
    server = start_embedded(pgdata / "data", cleanup_mode="delete")
    url = server.get_uri()
    with psycopg.connect(url, autocommit=True) as conn:
        for key, value in (
            ("fsync", "off"),
            ("synchronous_commit", "off"),
            ("full_page_writes", "off"),
        ):
            conn.execute(
                sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(key), sql.Literal(value))
            )
        # The chaos and scale suites run several `serve` processes, each with its pools.
        conn.execute("ALTER SYSTEM SET max_connections = '300'")
    # max_connections only applies at start: a reload would leave it at 100.
    restart_embedded(server)
    url = server.get_uri()
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SHOW max_connections").fetchone()
        assert row is not None and row[0] == "300", f"max_connections is {row}"
    yield url
    server.cleanup()  # stops the server and deletes its data, so the folder can go too
    shutil.rmtree(pgdata, ignore_errors=True)


def _db_url(admin_url: str, name: str) -> str:
    return psycopg.conninfo.make_conninfo(admin_url, dbname=name)


@pytest.fixture(scope="session")
def template_url(pg_admin_url: str) -> str:
    import asyncio

    from controlplane.db.migrate import migrate

    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(TEMPLATE_DB))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE_DB)))
    url = _db_url(pg_admin_url, TEMPLATE_DB)
    asyncio.run(migrate(url))
    return url


def create_database(pg_admin_url: str, *, template: str | None = TEMPLATE_DB) -> str:
    name = f"cp_test_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        if template:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )
        else:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return _db_url(pg_admin_url, name)


def drop_database(pg_admin_url: str, url: str) -> None:
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(str(name)))
        )


@pytest.fixture
def database_url(pg_admin_url: str, template_url: str) -> Iterator[str]:
    url = create_database(pg_admin_url)
    yield url
    drop_database(pg_admin_url, url)


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "api_token": ADMIN_TOKEN,
        "encryption_key": ENCRYPTION_KEY,
        "jwt_secret": JWT_SECRET,
        "database_url": database_url,
        "run_workers": False,
        "db_pool_min": 1,
        "db_pool_max": 10,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[object]:
    from controlplane.app import create_app

    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: object) -> AsyncIterator[httpx.AsyncClient]:
    """An anonymous client on the in-process app."""
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def admin(app: object) -> AsyncIterator[httpx.AsyncClient]:
    """A client that sends the admin token."""
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    ) as c:
        yield c


async def flush_audit(app: object) -> None:
    await app.state.cp.audit.flush()  # type: ignore[attr-defined]


PVE_TOKEN_ID = "root@pam!controlplane"
PVE_TOKEN_SECRET = "5e0c7c0e-1b2a-4c3d-9e8f-0a1b2c3d4e5f"


class SimHandle:
    """A simulated Proxmox cluster served over real HTTP on loopback."""

    def __init__(self, sim: object, url: str) -> None:
        self.sim = sim
        self.url = url

    def node_body(self, pve_node: str = "pve1", **overrides: object) -> dict[str, object]:
        body: dict[str, object] = {
            "name": pve_node,
            "api_url": self.url,
            "pve_node": pve_node,
            "token_id": PVE_TOKEN_ID,
            "token_secret": PVE_TOKEN_SECRET,
            "verify_tls": False,
            "vmid_range_start": 10000,
            "vmid_range_end": 10999,
        }
        body.update(overrides)
        return body


async def start_sim(**kwargs: object) -> tuple[SimHandle, object]:
    from controlplane.pvesim.app import create_app
    from controlplane.pvesim.auth import Token
    from controlplane.pvesim.server import HttpServer
    from controlplane.pvesim.simulator import Simulator

    kwargs.setdefault("nodes", ("pve1", "pve2"))
    kwargs.setdefault(
        "task_durations", {"vzclone": 0.05, "vzstart": 0.02, "vzstop": 0.02, "vzdestroy": 0.02}
    )
    sim = Simulator(tokens=[Token(PVE_TOKEN_ID, PVE_TOKEN_SECRET, None)], **kwargs)  # type: ignore[arg-type]
    server = await HttpServer(create_app(sim)).start()
    return SimHandle(sim, server.url), server


@pytest.fixture
async def pve_sim() -> AsyncIterator[SimHandle]:
    handle, server = await start_sim()
    yield handle
    await server.close()  # type: ignore[attr-defined]


async def seed_cluster(
    admin: httpx.AsyncClient,
    app: object,
    sim: SimHandle,
    *,
    node_ram_mb: int,
    web_ram_mb: int,
    big_ram_mb: int,
) -> dict[str, Any]:
    """An online node holding templates 9000/9001, the default self-service project `web`
    (template 9000) and the self-service project `big` (template 9001)."""
    r = await admin.post("/api/v1/nodes", json=sim.node_body("pve1", total_ram_mb=node_ram_mb))
    assert r.status_code == 201, r.text
    node = r.json()
    await app.state.cp.db.execute(  # type: ignore[attr-defined]
        "UPDATE nodes SET status = 'online', templates = '{9000,9001}' WHERE id = %(id)s",
        {"id": node["id"]},
    )
    body = {
        "name": "Web",
        "slug": "web",
        "template_vmid": 9000,
        "ram_mb": web_ram_mb,
        "self_service": True,
    }
    r = await admin.post("/api/v1/projects", json={**body, "is_default": True})
    assert r.status_code == 201, r.text
    r = await admin.post(
        "/api/v1/projects",
        json={**body, "name": "Big", "slug": "big", "template_vmid": 9001, "ram_mb": big_ram_mb},
    )
    assert r.status_code == 201, r.text
    return {"node": node}


async def wait_until_blocked(db: object, statement: str, what: str) -> None:
    """Until another session waits for a lock in a statement containing `statement`.

    Race tests hold a transaction open on a second connection, start the competing request,
    and use this before committing, so the request is known to be queued behind the lock.
    """
    import asyncio

    for _ in range(500):
        waiting = await db.fetch_val(  # type: ignore[attr-defined]
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND query LIKE %(pattern)s AND pid <> pg_backend_pid()",
            {"pattern": f"%{statement}%"},
        )
        if waiting:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{what} never waited for the lock")


def terminate_backends(database_url: str) -> int:
    """What a PostgreSQL restart does to the app: every connection to its database dies."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    return int(row[0]) if row else 0
