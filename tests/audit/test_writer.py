"""The audit writer keeps the order of events, even when a flush overtakes its batch."""

from __future__ import annotations

import asyncio
from typing import Any

from controlplane.audit.writer import AuditEntry, AuditLog
from controlplane.db import Database


class SlowFirstWrite:
    """A database whose first statement takes a while (a pool waiting for a connection)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._calls = 0

    async def execute(self, query: str, params: Any = None) -> Any:
        self._calls += 1
        if self._calls == 1:
            await asyncio.sleep(0.2)
        return await self._db.execute(query, params)


async def test_a_flush_never_commits_before_the_batch_in_flight(database_url: str) -> None:
    db = await Database.connect(database_url, min_size=1, max_size=4)
    try:
        audit = AuditLog(SlowFirstWrite(db))  # type: ignore[arg-type]
        audit.start()
        audit.record(AuditEntry(actor="test", action="first", target_type="t"))
        await asyncio.sleep(0.05)  # the writer has taken "first" and is writing it
        audit.record(AuditEntry(actor="test", action="second", target_type="t"))
        await audit.flush()
        await audit.stop()
        rows = await db.fetch_all("SELECT action FROM audit_log ORDER BY id")
        assert [r["action"] for r in rows] == ["first", "second"]
    finally:
        await db.close()
