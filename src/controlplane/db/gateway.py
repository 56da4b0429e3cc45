"""The one database gateway: every query goes through an `Executor`.

`Database` (the pool; each call its own short transaction) and `Transaction` (one
connection inside one transaction) both satisfy `Executor`, so a service typed against it
runs alone or inside a caller's transaction; a nested `transaction()` is a savepoint.
Driver errors become our own exceptions, so services can say "this name is taken" instead
of catching psycopg internals:

    DatabaseError
     ├── ConstraintViolation  unique / exclusion / foreign-key violation; names the constraint
     └── Unavailable          the server cannot be reached (-> 503)

Each domain's service turns the constraint names it expects into its domain errors.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Any, Protocol

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

Params = Mapping[str, Any] | None
Row = dict[str, Any]
Pool = AsyncConnectionPool[psycopg.AsyncConnection[Row]]


class DatabaseError(Exception):
    """Base of the gateway's exceptions."""


class ConstraintViolation(DatabaseError):
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
        return ConstraintViolation(
            diag.constraint_name, diag.message_detail or diag.message_primary or ""
        )
    if isinstance(exc, psycopg.OperationalError):
        return Unavailable(str(exc))
    return None


class Executor(Protocol):
    """What services take: run queries, or open a (nested) transaction."""

    async def fetch_one(self, sql: str, params: Params = None) -> Row | None: ...

    async def fetch_all(self, sql: str, params: Params = None) -> list[Row]: ...

    async def fetch_val(self, sql: str, params: Params = None) -> Any: ...

    async def execute(self, sql: str, params: Params = None) -> int: ...

    def transaction(self) -> AbstractAsyncContextManager[Executor]: ...


class QueryCounter:
    """How many statements ran through one `Database`, in transactions or not.

    Read by tests to catch N+1 queries: a list endpoint must not grow with its rows. The
    total counts every task's queries (background pollers too); `count_queries()` counts
    only those of the code that runs inside it (and the tasks it starts)."""

    def __init__(self) -> None:
        self.count = 0

    def tick(self) -> None:
        self.count += 1
        for scope in _scopes.get():
            scope.count += 1


_scopes: ContextVar[tuple[QueryCounter, ...]] = ContextVar("query_scopes", default=())


@contextmanager
def count_queries() -> Iterator[QueryCounter]:
    """Count the statements run by this context (a request made inside it, say) only."""
    scope = QueryCounter()
    token = _scopes.set((*_scopes.get(), scope))
    try:
        yield scope
    finally:
        _scopes.reset(token)


class Transaction:
    """Queries on one connection inside one transaction; `transaction()` is a savepoint."""

    def __init__(self, conn: psycopg.AsyncConnection[Row], counter: QueryCounter) -> None:
        self.conn = conn
        self._counter = counter

    async def _run(self, sql: str, params: Params) -> psycopg.AsyncCursor[Row]:
        self._counter.tick()
        try:
            return await self.conn.execute(sql, params)
        except psycopg.Error as exc:
            raise (_translate(exc) or exc) from exc

    async def fetch_one(self, sql: str, params: Params = None) -> Row | None:
        cur = await self._run(sql, params)
        return await cur.fetchone()

    async def fetch_all(self, sql: str, params: Params = None) -> list[Row]:
        cur = await self._run(sql, params)
        return await cur.fetchall()

    async def fetch_val(self, sql: str, params: Params = None) -> Any:
        row = await self.fetch_one(sql, params)
        return None if row is None else next(iter(row.values()))

    async def execute(self, sql: str, params: Params = None) -> int:
        cur = await self._run(sql, params)
        return cur.rowcount

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """A savepoint: an error rolls back the block only, the outer transaction goes on."""
        try:
            async with self.conn.transaction():
                yield self
        except psycopg.Error as exc:
            raise (_translate(exc) or exc) from exc


class Session(Transaction):
    """Queries on one held connection, each committed at once (for session-level state);
    `transaction()` opens a real transaction on it."""


def _honour_swallowed_cancel() -> None:
    """Raise the cancel that the pool's wait for a connection may have swallowed.

    psycopg_pool waits for a free connection with `asyncio.wait_for`, which on Python 3.11
    returns the result and drops the cancel when both arrive together (CPython gh-86296,
    fixed in 3.12). The task still counts the cancel: without this check a stopping service
    would carry on with its round, then sleep or wait a whole period, and its stop would
    time out (`STOP_TIMEOUT`) instead of taking milliseconds.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


@asynccontextmanager
async def _connection(pool: Pool) -> AsyncIterator[psycopg.AsyncConnection[Row]]:
    async with pool.connection() as conn:
        _honour_swallowed_cancel()
        yield conn


class Database:
    """The pool plus helpers. Each helper call runs in its own short transaction."""

    def __init__(self, pool: Pool, url: str) -> None:
        self.pool = pool
        # The URL it connects to, for a connection of its own (LISTEN) or a second pool.
        self.url = url
        self.counter = QueryCounter()

    @property
    def queries_run(self) -> int:
        """Statements run so far, inside transactions too (tests catch N+1 queries)."""
        return self.counter.count

    @classmethod
    async def connect(
        cls, url: str, *, min_size: int = 2, max_size: int = 20, timeout: float = 10.0
    ) -> Database:
        # `timeout` bounds the wait for a connection (the pool is busy, or the database is
        # down and being reconnected); past it the caller gets Unavailable, the API a 503.
        pool: Pool = AsyncConnectionPool(
            url,
            connection_class=psycopg.AsyncConnection[Row],
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            open=False,
            kwargs={"row_factory": dict_row, "autocommit": True},
            name="controlplane",
        )
        await pool.open(wait=True, timeout=30)
        return cls(pool, url)

    async def close(self) -> None:
        await self.pool.close()

    async def fetch_one(self, sql: str, params: Params = None) -> Row | None:
        self.counter.tick()
        try:
            async with _connection(self.pool) as conn:
                cur = await conn.execute(sql, params)
                return await cur.fetchone()
        except psycopg.Error as exc:
            raise (_translate(exc) or exc) from exc

    async def fetch_all(self, sql: str, params: Params = None) -> list[Row]:
        self.counter.tick()
        try:
            async with _connection(self.pool) as conn:
                cur = await conn.execute(sql, params)
                return await cur.fetchall()
        except psycopg.Error as exc:
            raise (_translate(exc) or exc) from exc

    async def fetch_val(self, sql: str, params: Params = None) -> Any:
        row = await self.fetch_one(sql, params)
        return None if row is None else next(iter(row.values()))

    async def execute(self, sql: str, params: Params = None) -> int:
        self.counter.tick()
        try:
            async with _connection(self.pool) as conn:
                cur = await conn.execute(sql, params)
                return cur.rowcount
        except psycopg.Error as exc:
            raise (_translate(exc) or exc) from exc

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """One connection, one transaction: commit on success, roll back on error."""
        try:
            async with _connection(self.pool) as conn, conn.transaction():
                yield Transaction(conn, self.counter)
        except psycopg.Error as exc:
            raise (_translate(exc) or exc) from exc

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Session]:
        """One connection held for the block, autocommit: for session-level advisory locks."""
        try:
            async with _connection(self.pool) as conn:
                yield Session(conn, self.counter)
        except psycopg.Error as exc:
            raise (_translate(exc) or exc) from exc

    async def ping(self) -> None:
        await self.fetch_val("SELECT 1")
