"""The database gateway: one executor protocol, savepoints, query counting, its errors."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from controlplane.db import ConstraintViolation, Database, Executor
from controlplane.db.gateway import count_queries


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = await Database.connect(database_url, min_size=1, max_size=2)
    await database.execute("CREATE TABLE gw_items (name text PRIMARY KEY)")
    yield database
    await database.close()


async def _insert(ex: Executor, name: str) -> int:
    # A "service" typed against the protocol: the same code runs alone or inside a caller's
    # transaction.
    return await ex.execute("INSERT INTO gw_items (name) VALUES (%(n)s)", {"n": name})


async def _names(db: Database) -> list[str]:
    rows = await db.fetch_all("SELECT name FROM gw_items ORDER BY name")
    return [r["name"] for r in rows]


async def test_a_nested_transaction_is_a_savepoint(db: Database) -> None:
    async with db.transaction() as tx:
        await _insert(tx, "outer")
        with pytest.raises(RuntimeError):
            async with tx.transaction() as inner:
                await _insert(inner, "inner")
                raise RuntimeError("undo the inner block only")
        async with tx.transaction() as inner:
            await _insert(inner, "kept")
    assert await _names(db) == ["kept", "outer"]


async def test_a_failed_statement_rolls_back_its_savepoint_only(db: Database) -> None:
    await _insert(db, "taken")
    async with db.transaction() as tx:
        await _insert(tx, "first")
        with pytest.raises(ConstraintViolation) as info:
            async with tx.transaction() as inner:
                await _insert(inner, "taken")
        assert info.value.constraint == "gw_items_pkey"
        await _insert(tx, "after")  # the transaction is still usable
    assert await _names(db) == ["after", "first", "taken"]


async def test_an_error_rolls_back_the_whole_transaction(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            await _insert(tx, "lost")
            async with tx.transaction() as inner:
                await _insert(inner, "lost too")
            raise RuntimeError("roll everything back")
    assert await _names(db) == []


async def test_queries_inside_transactions_are_counted(db: Database) -> None:
    before = db.queries_run
    await _insert(db, "a")
    assert db.queries_run - before == 1
    before = db.queries_run
    async with db.transaction() as tx:
        await _insert(tx, "b")
        await tx.fetch_val("SELECT count(*) FROM gw_items")
        async with tx.transaction() as inner:
            await inner.fetch_one("SELECT 1 AS one")
    assert db.queries_run - before == 3
    before = db.queries_run
    async with db.session() as session:
        await session.fetch_all("SELECT 1 AS one")
    assert db.queries_run - before == 1


async def test_the_constraint_error_is_not_a_domain_conflict(db: Database) -> None:
    await _insert(db, "x")
    with pytest.raises(ConstraintViolation) as info:
        await _insert(db, "x")
    assert info.value.constraint == "gw_items_pkey"
    assert type(info.value).__name__ != "Conflict"


async def test_count_queries_sees_only_its_own_context(db: Database) -> None:
    started = asyncio.Event()
    stop = asyncio.Event()

    async def background() -> None:  # a poller started before the count
        while not stop.is_set():
            await db.fetch_val("SELECT 1")
            started.set()
            await asyncio.sleep(0.001)

    poller = asyncio.create_task(background())
    await started.wait()
    before = db.queries_run
    with count_queries() as mine:
        async with db.transaction() as tx:
            await _insert(tx, "a")
            await tx.fetch_val("SELECT count(*) FROM gw_items")
        await asyncio.create_task(db.fetch_val("SELECT 2"))  # a task started inside counts
        await asyncio.sleep(0.02)
    stop.set()
    await poller
    assert mine.count == 3
    assert db.queries_run - before > 3  # the total saw the poller too


class _SwallowingPool:
    """A pool whose wait for a connection drops a cancel, as `asyncio.wait_for` does on
    Python 3.11 when the connection and the cancel arrive together (CPython gh-86296)."""

    def __init__(self, real: object) -> None:
        self.real = real
        self.waiting = asyncio.Event()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[object]:
        self.waiting.set()
        # The connection "arrives" with the cancel: wait_for returns it.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(3600)
        async with self.real.connection() as conn:  # type: ignore[attr-defined]
            yield conn


async def test_a_cancel_swallowed_while_waiting_for_a_connection_still_stops_the_task(
    db: Database,
) -> None:
    pool = _SwallowingPool(db.pool)
    swallowing = Database(pool, db.url)  # type: ignore[arg-type]
    task = asyncio.create_task(_insert(swallowing, "after-cancel"))
    await pool.waiting.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _names(db) == []  # the statement never ran
