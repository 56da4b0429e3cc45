"""One Server-Sent Events stream: resume from `Last-Event-ID`, then live, with heartbeats.

The subscriber is registered with the hub before the backlog is read, so nothing falls
between the two: the backlog covers everything up to the table's head at that moment, the
queue everything the hub reads after, and ids already sent are skipped. A `Last-Event-ID`
older than what the table still keeps (pruned) gets `event: reset` first: the client
reloads its lists, then follows the stream from here.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from controlplane.db import Database
from controlplane.events.hub import BATCH, EventHub, Q

Render = Callable[[dict[str, Any]], bytes]


def frame(event: str, event_id: int | None, data: str) -> bytes:
    head = f"event: {event}\n" + (f"id: {event_id}\n" if event_id is not None else "")
    return (head + f"data: {data}\n\n").encode()


PING = b": ping\n\n"


async def _start_point(
    db: Database, last_event_id: int | None, hub_cursor: int
) -> tuple[int, bool]:
    """Where to start reading, and whether the client must reload (a reset)."""
    if last_event_id is None:
        return hub_cursor, False
    head = int(await db.fetch_val(Q["events_head"]) or 0)
    if last_event_id > head:  # not one of ours (another database, or made up)
        return head, True
    oldest = await db.fetch_val(Q["events_oldest"])
    first_kept = head + 1 if oldest is None else int(oldest)
    if last_event_id + 1 < first_kept:
        return head, True  # events it missed were pruned
    return last_event_id, False


async def event_stream(
    hub: EventHub,
    db: Database,
    *,
    owner: uuid.UUID | None,
    last_event_id: int | None,
    heartbeat_s: float,
    render: Render,
    still_allowed: Callable[[], Awaitable[bool]],
    deadline: float | None = None,
) -> AsyncIterator[bytes]:
    sub = hub.subscribe(owner)
    try:
        last, reset = await _start_point(db, last_event_id, hub.cursor)
        if reset:
            yield frame("reset", last, "{}")
        yield PING  # the stream is open: proxies and clients see bytes at once
        while True:
            rows = await db.fetch_all(
                Q["events_after"], {"after": last, "owner": owner, "limit": BATCH}
            )
            for row in rows:
                yield render(row)
                last = row["id"]
            if len(rows) < BATCH:
                break
        while not sub.dropped.is_set():
            wait = heartbeat_s
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    return  # the access token expired: the client reconnects with a new one
            try:
                async with asyncio.timeout(wait):
                    event = await sub.queue.get()
            except TimeoutError:
                if not await still_allowed():
                    return
                yield PING
                continue
            if event["id"] <= last:
                continue
            yield render(event)
            last = event["id"]
    finally:
        hub.unsubscribe(sub)
