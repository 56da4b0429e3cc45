"""Audit rows are written off the request path by a background writer.

`AuditLog.record()` never waits for the database and never fails the request: it puts the
entry on a bounded queue. One task drains the queue in batches; on shutdown it flushes what
is left. When the queue is full (the database is down for long), new entries are dropped and
counted, and the drop is logged, rather than letting memory grow without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from controlplane.db import Database

log = logging.getLogger(__name__)

# Keys whose values never reach the audit log, whatever the caller passes.
_SECRET_MARKERS = ("secret", "password", "token", "private_key", "key_sealed", "sealed")

INSERT = """
INSERT INTO audit_log (at, actor, action, target_type, target_id, details, client_ip, request_id)
SELECT * FROM unnest(%(at)s::timestamptz[], %(actor)s::text[], %(action)s::text[],
                     %(target_type)s::text[], %(target_id)s::text[], %(details)s::jsonb[],
                     %(client_ip)s::text[], %(request_id)s::text[])
"""


def redact(details: dict[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for key, value in details.items():
        if any(marker in key.lower() for marker in _SECRET_MARKERS):
            clean[key] = "[redacted]"
        elif isinstance(value, dict):
            clean[key] = redact(value)
        else:
            clean[key] = value
    return clean


@dataclass
class AuditEntry:
    actor: str
    action: str
    target_type: str
    target_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    client_ip: str | None = None
    request_id: str | None = None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


class AuditLog:
    def __init__(self, db: Database, *, max_queue: int = 10_000, batch: int = 500) -> None:
        self._db = db
        self._queue: asyncio.Queue[AuditEntry] = asyncio.Queue(maxsize=max_queue)
        self._batch = batch
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()  # clear while the writer holds an uncommitted batch
        self._idle.set()
        # One batch in the database at a time, in the order they were taken from the queue:
        # otherwise a flush could commit later entries before the writer's batch, and the
        # log's ids would not follow the order of events. (asyncio.Lock is FIFO, and taking
        # a batch and asking for the lock happen with no await in between.)
        self._writing = asyncio.Lock()
        self.dropped = 0

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def record(self, entry: AuditEntry) -> None:
        entry.details = redact(entry.details)
        try:
            self._queue.put_nowait(entry)
        except asyncio.QueueFull:
            self.dropped += 1
            log.error(
                "audit queue full, entry dropped",
                extra={"action": entry.action, "dropped_total": self.dropped},
            )

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="audit-writer")

    async def stop(self) -> None:
        """Flush everything queued, then stop the writer."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def flush(self) -> None:
        """Write everything recorded so far, including a batch the writer is busy with."""
        while not self._queue.empty():
            await self._write(self._take_batch())
        await self._idle.wait()

    def _take_batch(self) -> list[AuditEntry]:
        batch: list[AuditEntry] = []
        while len(batch) < self._batch and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        return batch

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            batch = [first, *self._take_batch()]
            self._idle.clear()
            try:
                await self._write(batch)
            except asyncio.CancelledError:
                for entry in batch:  # put them back for the final flush
                    with contextlib.suppress(asyncio.QueueFull):
                        self._queue.put_nowait(entry)
                raise
            except Exception:
                log.exception("audit write failed; retrying", extra={"entries": len(batch)})
                for entry in batch:
                    with contextlib.suppress(asyncio.QueueFull):
                        self._queue.put_nowait(entry)
                await asyncio.sleep(1.0)
            finally:
                self._idle.set()

    async def _write(self, batch: list[AuditEntry]) -> None:
        if not batch:
            return
        async with self._writing:
            await self._insert(batch)

    async def _insert(self, batch: list[AuditEntry]) -> None:
        await self._db.execute(
            INSERT,
            {
                "at": [e.at for e in batch],
                "actor": [e.actor for e in batch],
                "action": [e.action for e in batch],
                "target_type": [e.target_type for e in batch],
                "target_id": [e.target_id for e in batch],
                "details": [json.dumps(e.details, default=str) for e in batch],
                "client_ip": [e.client_ip for e in batch],
                "request_id": [e.request_id for e in batch],
            },
        )
