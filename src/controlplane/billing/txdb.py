"""Run other domains' service functions inside one of our transactions.

`tenants.service.create_tenant(db, ...)` and `request_suspend(db, ...)` take a `Database`
and open their own transactions on pooled connections. Billing needs them in the same
transaction as its own rows: the tier check and the tenant insert under one lock, a webhook
event id and its effects committed together. `in_transaction(db)` yields a `Database` bound
to one connection inside one transaction; the services' own `transaction()` becomes a
savepoint of it, and their queries run on that connection. One connection per use case,
so a burst of requests can never hold one connection while waiting for a second.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import psycopg
from psycopg_pool import AsyncConnectionPool

from controlplane.db import Database
from controlplane.db.gateway import Row


class _OneConnection:
    """Quacks like the pool for `Database`: always hands out the same connection."""

    def __init__(self, conn: psycopg.AsyncConnection[Row]) -> None:
        self.conn = conn

    @asynccontextmanager
    async def connection(self, timeout: float | None = None) -> AsyncIterator[Any]:
        yield self.conn


@asynccontextmanager
async def in_transaction(db: Database) -> AsyncIterator[Database]:
    """One connection, one transaction (commit on success, roll back on error)."""
    async with db.transaction() as tx:
        yield Database(cast(AsyncConnectionPool, _OneConnection(tx.conn)))
