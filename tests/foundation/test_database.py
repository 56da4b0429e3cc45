"""Migrations, the schema they build, and sealing secrets."""

from __future__ import annotations

import psycopg
import pytest

from controlplane.crypto import Sealer, SealError
from controlplane.db import migrate as migrate_module
from controlplane.db.migrate import Migration, MigrationError, migrate
from tests.conftest import create_database, drop_database

SCHEMA = """
SELECT table_name, column_name, data_type, is_nullable, column_default
FROM information_schema.columns WHERE table_schema = 'public'
ORDER BY table_name, column_name
"""
INDEXES = (
    "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname"
)
CONSTRAINTS = """
SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
WHERE connamespace = 'public'::regnamespace ORDER BY conname
"""


def _schema(url: str) -> tuple[list, list, list]:
    with psycopg.connect(url) as conn:
        return tuple(conn.execute(q).fetchall() for q in (SCHEMA, INDEXES, CONSTRAINTS))  # type: ignore[return-value]


async def test_fresh_and_template_databases_have_the_same_schema(
    pg_admin_url: str, database_url: str
) -> None:
    fresh = create_database(pg_admin_url, template=None)
    try:
        applied = await migrate(fresh)
        assert applied == [m.name for m in migrate_module.available_migrations()]
        assert await migrate(fresh) == []  # idempotent
        assert _schema(fresh) == _schema(database_url)
    finally:
        drop_database(pg_admin_url, fresh)


async def test_migrating_step_by_step_equals_all_at_once(
    pg_admin_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    everything = migrate_module.available_migrations()
    stepwise = create_database(pg_admin_url, template=None)
    at_once = create_database(pg_admin_url, template=None)
    try:
        for n in range(1, len(everything) + 1):
            monkeypatch.setattr(migrate_module, "available_migrations", lambda n=n: everything[:n])
            await migrate(stepwise)
        monkeypatch.undo()
        await migrate(at_once)
        assert _schema(stepwise) == _schema(at_once)
    finally:
        drop_database(pg_admin_url, stepwise)
        drop_database(pg_admin_url, at_once)


async def test_an_edited_migration_is_refused(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = migrate_module.available_migrations()
    tampered = [
        Migration(m.version, m.name, m.sql + "\n-- edited") if m.version == 1 else m
        for m in original
    ]
    monkeypatch.setattr(migrate_module, "available_migrations", lambda: tampered)
    with pytest.raises(
        MigrationError, match=r"0001_foundation\.sql was changed after it was applied"
    ):
        await migrate(database_url)


async def test_unknown_applied_migration_is_refused(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = migrate_module.available_migrations()
    monkeypatch.setattr(migrate_module, "available_migrations", lambda: original[:-1])
    with pytest.raises(MigrationError, match="does not know"):
        await migrate(database_url)


async def test_concurrent_migrations_serialise(pg_admin_url: str) -> None:
    import asyncio

    fresh = create_database(pg_admin_url, template=None)
    try:
        results = await asyncio.gather(*(migrate(fresh) for _ in range(3)))
        assert sorted(len(r) for r in results) == [0, 0, len(migrate_module.available_migrations())]
    finally:
        drop_database(pg_admin_url, fresh)


def test_sealed_values_open_only_in_their_place() -> None:
    import os

    sealer = Sealer.from_key(os.urandom(32))
    sealed = sealer.seal("s3cret", table="nodes", column="token_secret", row_id="a")
    assert sealed.startswith("v1:") and "s3cret" not in sealed
    assert (
        sealer.seal("s3cret", table="nodes", column="token_secret", row_id="a") != sealed
    )  # random nonce
    assert sealer.open(sealed, table="nodes", column="token_secret", row_id="a") == "s3cret"
    for table, column, row in (
        ("nodes", "token_secret", "b"),
        ("nodes", "ssh_private_key", "a"),
        ("users", "token_secret", "a"),
    ):
        with pytest.raises(SealError):
            sealer.open(sealed, table=table, column=column, row_id=row)
    with pytest.raises(SealError):
        Sealer.from_key(os.urandom(32)).open(
            sealed, table="nodes", column="token_secret", row_id="a"
        )
    tampered = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(SealError):
        sealer.open(tampered, table="nodes", column="token_secret", row_id="a")


def test_key_rotation_opens_old_values() -> None:
    import os

    old, new = os.urandom(32), os.urandom(32)
    sealed_old = Sealer({1: old}).seal("x", table="t", column="c", row_id=1)
    both = Sealer({1: old, 2: new})
    assert both.open(sealed_old, table="t", column="c", row_id=1) == "x"
    assert both.seal("y", table="t", column="c", row_id=1).startswith("v2:")


async def test_a_sealed_secret_copied_to_another_row_does_not_open(
    app: object, admin, pve_sim
) -> None:  # type: ignore[no-untyped-def]
    from controlplane.nodes.service import open_token

    a = (await admin.post("/api/v1/nodes", json=pve_sim.node_body("pve1", name="a"))).json()
    b = (await admin.post("/api/v1/nodes", json=pve_sim.node_body("pve2", name="b"))).json()
    db = app.state.cp.db  # type: ignore[attr-defined]
    await db.execute(
        "UPDATE nodes SET token_secret_sealed = (SELECT token_secret_sealed FROM nodes WHERE id = %(a)s) WHERE id = %(b)s",
        {"a": a["id"], "b": b["id"]},
    )
    row_b = await db.fetch_one("SELECT * FROM nodes WHERE id = %(id)s", {"id": b["id"]})
    with pytest.raises(SealError):
        open_token(app.state.cp.sealer, row_b)  # type: ignore[attr-defined]
