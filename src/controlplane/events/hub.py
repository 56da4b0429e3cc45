"""One LISTEN connection per process fans events out to its streams.

Every change of a tenant or node row writes an `events` row at commit, numbered in commit
order, and NOTIFYs `cp_events` (migration 0010). The hub LISTENs on a connection of its
own; a notification (or, as a safety net, `POLL_S` of silence) makes it read the rows
after its cursor, once for all streams, and offer each to every subscriber whose filter
matches. A change made on any replica reaches streams on every replica, since each
replica's hub reads the same table.

A subscriber's queue is bounded: one that is full is dropped (its stream ends), so a slow
client never holds up the others; it reconnects with `Last-Event-ID` and reads what it
missed from the table. A lost LISTEN connection is reconnected with backoff; nothing is
lost meanwhile, because the hub reads from its cursor, not from the notifications.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

import psycopg

from controlplane.db import Database, load_queries

log = logging.getLogger(__name__)
Q = load_queries("controlplane.events")
CHANNEL = "cp_events"
POLL_S = 5.0
BATCH = 500


@dataclass(eq=False)
class Subscriber:
    """One stream: its filter, its bounded queue, and whether the hub dropped it."""

    owner: uuid.UUID | None  # None: every event (the admin stream)
    queue: asyncio.Queue[dict[str, Any]] = field(repr=False)
    dropped: asyncio.Event = field(default_factory=asyncio.Event)

    def wants(self, event: dict[str, Any]) -> bool:
        if self.owner is None:
            return True
        return event["kind"] == "tenant" and event["data"].get("owner_user_id") == str(self.owner)


class EventHub:
    """Started by the composition root in processes that serve the API."""

    def __init__(self, db: Database, conninfo: str, *, queue_size: int) -> None:
        self.db = db
        self.conninfo = conninfo
        self.queue_size = queue_size
        self.subscribers: set[Subscriber] = set()
        self.cursor = 0
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.listening = asyncio.Event()

    async def start(self) -> None:
        self.cursor = int(await self.db.fetch_val(Q["events_head"]) or 0)
        self._tasks = [
            asyncio.create_task(self._listen(), name="events-listen"),
            asyncio.create_task(self._pump(), name="events-pump"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for sub in list(self.subscribers):
            sub.dropped.set()

    def subscribe(self, owner: uuid.UUID | None) -> Subscriber:
        sub = Subscriber(owner=owner, queue=asyncio.Queue(maxsize=self.queue_size))
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    async def _listen(self) -> None:
        delay = 0.5
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    delay = 0.5
                    self._wake.set()  # catch up on what happened while not listening
                    async for _ in conn.notifies():
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("event listener lost; reconnecting", extra={"error": str(exc)})
            self.listening.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def _pump(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_S):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self._drain()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("reading events failed; retrying", extra={"error": str(exc)})
                await asyncio.sleep(1.0)
                self._wake.set()

    async def _drain(self) -> None:
        while True:
            rows = await self.db.fetch_all(
                Q["events_after"], {"after": self.cursor, "owner": None, "limit": BATCH}
            )
            for row in rows:
                self._offer(row)
                self.cursor = row["id"]
            if len(rows) < BATCH:
                return

    def _offer(self, event: dict[str, Any]) -> None:
        for sub in list(self.subscribers):
            if sub.dropped.is_set() or not sub.wants(event):
                continue
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                log.info("dropping a slow event stream", extra={"owner": str(sub.owner)})
                sub.dropped.set()
                self.subscribers.discard(sub)


PRUNE_EVERY_S = 60.0


def event_pruner(db: Database, retention_s: int) -> Any:
    """Drops events older than `EVENTS_RETENTION_S`, every minute (any replica may)."""
    from controlplane.periodic import Periodic

    async def prune() -> None:
        await db.execute(Q["events_prune"], {"keep": retention_s})

    return Periodic("events-prune", prune, PRUNE_EVERY_S)
