"""Draining a node: its tenants moved elsewhere, at most `max_parallel` at a time.

A drain is a row; the drain runner (every few seconds, `SKIP LOCKED` so one replica takes
each drain per round) starts `move` operations for the node's settled tenants up to the
bound, each to the online node with the most free RAM that is not being drained, and marks
the drain `done` when no live tenant is left and nothing is in flight. Cancelling stops new
moves; those in flight finish. A tenant whose move failed stays on the node and is not
tried again by that drain (its operation says why). While a drain runs, placement skips the
node.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from controlplane.audit.context import AuditContext
from controlplane.audit.writer import AuditLog
from controlplane.config import Settings
from controlplane.db import ConstraintViolation, Database, Executor, load_queries
from controlplane.errors import Conflict, DomainError, NotFound
from controlplane.operations import usecases
from controlplane.periodic import Periodic

log = logging.getLogger(__name__)
Q = load_queries("controlplane.operations")
ACTOR = "system:drain"


async def start_drain(
    db: Executor, audit: AuditContext, node_id: uuid.UUID, *, max_parallel: int
) -> dict[str, Any]:
    node = await db.fetch_one(Q["move_target"], {"id": node_id})
    if node is None:
        raise NotFound(f"node {node_id} not found")
    try:
        async with db.transaction() as tx:
            await tx.fetch_one(
                Q["drain_insert"],
                {
                    "id": uuid.uuid4(),
                    "node_id": node_id,
                    "max_parallel": max_parallel,
                    "by": audit.actor,
                },
            )
            await audit.write(tx, "node.drain", "node", node_id, {"max_parallel": max_parallel})
    except ConstraintViolation as exc:
        if exc.constraint == "drains_one_running":
            raise Conflict(f"node {node['name']} is being drained already") from None
        raise
    return await drain_status(db, node_id)


async def drain_status(db: Executor, node_id: uuid.UUID) -> dict[str, Any]:
    row = await db.fetch_one(Q["drain_latest"], {"node_id": node_id})
    if row is None:
        raise NotFound(f"node {node_id} has never been drained")
    return row


async def cancel_drain(db: Executor, audit: AuditContext, node_id: uuid.UUID) -> dict[str, Any]:
    if await db.fetch_one(Q["drain_cancel"], {"node_id": node_id}) is None:
        current = await db.fetch_one(Q["drain_latest"], {"node_id": node_id})
        if current is None:
            raise NotFound(f"node {node_id} has never been drained")
        raise Conflict(f"the node's drain is {current['status']}, not running")
    audit.record("node.drain_cancel", "node", node_id)
    return await drain_status(db, node_id)


class DrainRunner:
    def __init__(
        self, db: Database, settings: Settings, audit: AuditLog, *, interval: float = 0.5
    ) -> None:
        self.db = db
        self.settings = settings
        self.audit = AuditContext(log=audit, actor=ACTOR)
        self._periodic = Periodic("drain runner", self.round, interval)

    def start(self) -> None:
        self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()

    async def round(self) -> int:
        """Start what each running drain may start now; the number of moves started."""
        started = 0
        async with self.db.transaction() as tx:
            for drain in await tx.fetch_all(Q["drains_running"]):
                started += await self._advance(tx, drain)
        return started

    async def _advance(self, tx: Executor, drain: dict[str, Any]) -> int:
        in_flight = int(await tx.fetch_val(Q["drain_in_flight"], {"drain_id": drain["id"]}) or 0)
        room = drain["max_parallel"] - in_flight
        candidates = (
            await tx.fetch_all(
                Q["drain_candidates"],
                {"node_id": drain["node_id"], "drain_id": drain["id"], "limit": max(room, 0)},
            )
            if room > 0
            else []
        )
        started = 0
        for tenant in candidates:
            target = await tx.fetch_one(
                Q["drain_target"], {"node_id": drain["node_id"], "ram": tenant["ram_mb"]}
            )
            if target is None:
                log.warning("drain: no node has room", extra={"tenant": str(tenant["id"])})
                break
            try:
                await usecases.move(
                    tx, self.settings, self.audit, tenant["id"], target["id"], drain_id=drain["id"]
                )
            except DomainError as exc:  # busy meanwhile, or the target filled up
                log.info(
                    "drain: move not started",
                    extra={"tenant": str(tenant["id"]), "reason": exc.message},
                )
                continue
            started += 1
        unsettled = int(
            await tx.fetch_val(Q["drain_unsettled"], {"node_id": drain["node_id"]}) or 0
        )
        if started == 0 and in_flight == 0 and not candidates and unsettled == 0:
            # Nothing movable is left: done (tenants whose move failed are still reported).
            await tx.execute(Q["drain_done"], {"id": drain["id"]})
            log.info("drain done", extra={"node": str(drain["node_id"])})
        return started
