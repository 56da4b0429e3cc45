"""The one database gateway: every query goes through `Database`.

It owns the psycopg pool and turns driver errors into our own exceptions, so services can
say "this name is taken" instead of catching psycopg internals:

    DatabaseError
     ├── Conflict          unique / exclusion / foreign-key violations (-> 409)
     └── Unavailable       the server cannot be reached (-> 503)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

Params = Mapping[str, Any] | None
Row = dict[str, Any]


class DatabaseError(Exception):
    """Base of the gateway's exceptions."""


class Conflict(DatabaseError):
    """A constraint refused the change; `constraint` names it."""

    def __init__(self, constraint: str | None, detail: str) -> None:
        super().__init__(detail)
        self.constraint = constraint


class Unavailable(DatabaseError):
    """The database cannot be reached."""


def _translate(exc: psycopg.Error) -> DatabaseError | None:
    if isinstance(
        exc,
        pg_errors.UniqueViolation | pg_errors.ForeignKeyViolation | pg_errors.ExclusionViolation,
    ):
        diag = exc.diag
        return Conflict(diag.constraint_name, diag.message_detail or diag.message_primary or "")
    if isinstance(exc, psycopg.OperationalError):
        return Unavailable(str(exc))
    return None


class _Executor:
    """Query helpers shared by the pool-backed Database and a single transaction."""

    async def _cursor_execute(self, sql: str, params: Params) -> psycopg.AsyncCursor[Row]:
        raise NotImplementedError

    async def fetch_one(self, sql: str, params: Params = None) -> Row | None:
        cur = await self._cursor_execute(sql, params)
        return await cur.fetchone()

    async def fetch_all(self, sql: str, params: Params = None) -> list[Row]:
        cur = await self._cursor_execute(sql, params)
        return await cur.fetchall()

    async def fetch_val(self, sql: str, params: Params = None) -> Any:
        row = await self.fetch_one(sql, params)
        return None if row is None else next(iter(row.values()))

    async def execute(self, sql: str, params: Params = None) -> int:
        cur = await self._cursor_execute(sql, params)
        return cur.rowcount


class Transaction(_Executor):
    """Queries on one connection inside one transaction."""

    def __init__(self, conn: psycopg.AsyncConnection[Row]) -> None:
        self.conn = conn

    async def _cursor_execute(self, sql: str, params: Params) -> psycopg.AsyncCursor[Row]:
        try:
            return await self.conn.execute(sql, params)
        except psycopg.Error as exc:
            raise (_translate(exc) or exc) from exc


class Session(Transaction):
    """Queries on one held connection, each committed at once (for session-level state)."""


class Database(_Executor):
    """The pool plus helpers. Each helper call runs in its own short transaction."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool
        self.queries_run = 0  # read by tests to catch N+1 queries

    @classmethod
    async def connect(
        cls, url: str, *, min_size: int = 2, max_size: int = 20, timeout: float = 10.0
    ) -> Database:
        # `timeout` bounds the wait for a connection (the pool is busy, or the database is
        # down and being reconnected); past it the caller gets Unavailable, the API a 503.
        pool = AsyncConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            open=False,
            kwargs={"row_factory": dict_row, "autocommit": True},
            name="controlplane",
        )
        await pool.open(wait=True, timeout=30)
        return cls(pool)

    async def close(self) -> None:
        await self.pool.close()

    async def fetch_one(self, sql: str, params: Params = None) -> Row | None:
        self.queries_run += 1
        try:
            async with self.pool.connection() as conn:
                cur = await conn.execute(sql, params)
                return await cur.fetchone()
        except psycopg.Error as exc:
            raise (_translate(exc) or exc) from exc

    async def fetch_all(self, sql: str, params: Params = None) -> list[Row]:
        self.queries_run += 1
        try:
            async with self.pool.connection() as conn:
                cur = await conn.execute(sql, params)
                return await cur.fetchall()
        except psycopg.Error as exc:
            raise (_translate(exc) or exc) from exc

    async def execute(self, sql: str, params: Params = None) -> int:
        self.queries_run += 1
        try:
            async with self.pool.connection() as conn:
                cur = await conn.execute(sql, params)
                return cur.rowcount
        except psycopg.Error as exc:
            raise (_translate(exc) or exc) from exc

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """One connection, one transaction: commit on success, roll back on error."""
        self.queries_run += 1
        try:
            async with self.pool.connection() as conn, conn.transaction():
                yield Transaction(conn)
        except psycopg.Error as exc:
            raise (_translate(exc) or exc) from exc

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Session]:
        """One connection held for the block, autocommit: for session-level advisory locks."""
        try:
            async with self.pool.connection() as conn:
                yield Session(conn)
        except psycopg.Error as exc:
            raise (_translate(exc) or exc) from exc

    async def ping(self) -> None:
        await self.fetch_val("SELECT 1")
