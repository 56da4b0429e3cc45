"""The operation workers: claim due operations, run their steps, finish with one swap.

The same design as the tenant workers (`provisioner.worker`): `FOR UPDATE SKIP LOCKED`
plus a lease renewed while the operation runs (the tenant's row is leased with it), a
step recorded before it runs so a resumed attempt starts there, transient errors retried
with backoff, and a final compare-and-swap that ends the operation and frees its tenant in
one statement together with what the kind settles (a snapshot's row, a backup's volid).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from typing import Any

import httpx
import psycopg

from controlplane.db import Executor
from controlplane.db.gateway import Unavailable
from controlplane.operations.steps import STEPS, UNDO, Q, Run
from controlplane.provisioner.context import LostLease, PermanentStep, StepContext, TransientStep
from controlplane.provisioner.worker import backoff
from controlplane.proxmox import ProxmoxTaskError, is_transient
from controlplane.tasks import finish_or_cancel

log = logging.getLogger(__name__)


async def _settle(tx: Executor, op: dict[str, Any], succeeded: bool) -> None:
    """What each kind leaves behind in SQL, in the transaction of the final swap."""
    kind, params, state = op["kind"], op["params"], op["state"]
    ids = {"tenant_id": op["tenant_id"], "op_id": op["id"]}
    if kind == "snapshot_create":
        await tx.execute(
            Q["snapshot_settle"],
            {**ids, "name": params["name"], "to": "ready" if succeeded else "error"},
        )
    elif kind == "snapshot_delete":
        if succeeded:
            await tx.execute(Q["snapshot_remove"], {**ids, "name": params["name"]})
        else:
            await tx.execute(Q["snapshot_settle"], {**ids, "name": params["name"], "to": "error"})
    elif kind == "backup_create":
        await tx.execute(
            Q["backup_settle"],
            {
                "id": params["backup_id"],
                "op_id": op["id"],
                "to": "ready" if succeeded else "error",
                "volid": state.get("volid"),
                "size": state.get("size"),
            },
        )
    elif kind == "backup_delete":
        if succeeded:
            await tx.execute(Q["backup_remove"], {"id": params["backup_id"]})
        else:
            await tx.execute(
                Q["backup_settle"],
                {
                    "id": params["backup_id"],
                    "op_id": op["id"],
                    "to": "error",
                    "volid": None,
                    "size": None,
                },
            )
    elif (kind in ("backup_restore", "rebuild") and succeeded) or (
        kind == "repair" and succeeded and state.get("mode") in ("restore", "recreate")
    ):
        await tx.execute(Q["snapshots_forget"], {"tenant_id": op["tenant_id"]})
    elif kind == "move" and not succeeded:
        await tx.execute(
            Q["move_release_target"],
            {
                "id": op["tenant_id"],
                "source": params["source_node_id"],
                "target": params["target_node_id"],
            },
        )
    elif kind == "resize" and not succeeded:
        await tx.execute(Q["resize_failed"], {"id": op["tenant_id"]})
    if succeeded and state.get("disk_gb") is not None:
        await tx.execute(Q["set_disk"], {"id": op["tenant_id"], "disk_gb": state["disk_gb"]})


class OperationWorker:
    def __init__(
        self,
        ctx: StepContext,
        *,
        concurrency: int = 10,
        lease_seconds: float = 30.0,
        poll_interval: float = 1.0,
        max_attempts: int = 8,
    ) -> None:
        self.ctx = ctx
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self.max_attempts = max_attempts
        self._running: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._claim_loop(), name="operations-claim"),
            asyncio.create_task(self._heartbeat(), name="operations-heartbeat"),
            asyncio.create_task(self._listen(), name="operations-listen"),
        ]

    async def stop(self, grace: float = 10.0) -> None:
        """Stop claiming; operations in flight get `grace` seconds; leases are released."""
        self._stopping = True
        self._wake.set()
        await finish_or_cancel(self._running.values(), grace)
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2.0)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                self.ctx.db.execute(Q["release_all"], {"owner": self.ctx.owner}), timeout=5.0
            )

    async def run_until_idle(self, timeout: float = 60.0) -> None:
        """For tests and tools: work until no operation is queued or running."""
        async with asyncio.timeout(timeout):
            while True:
                claimed = await self._claim_and_spawn()
                if not claimed and not self._running:
                    if not await self.ctx.db.fetch_val(Q["pending_work"]):
                        return
                    await asyncio.sleep(0.05)  # retries scheduled for later
                    continue
                if self._running:
                    await asyncio.wait(
                        list(self._running.values()), return_when=asyncio.FIRST_COMPLETED
                    )

    async def _listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.ctx.db.url, autocommit=True
                ) as conn:
                    await conn.execute("LISTEN controlplane_operations")
                    async for _ in conn.notifies():
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("operation notifications lost; reconnecting", extra={"error": str(exc)})
                await asyncio.sleep(2.0)

    async def _claim_loop(self) -> None:
        while not self._stopping:
            try:
                await self._claim_and_spawn()
            except Exception:
                log.exception("claiming operations failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)

    async def _claim_and_spawn(self) -> int:
        free = self.concurrency - len(self._running)
        if free <= 0 or self._stopping:
            return 0
        rows = await self.ctx.db.fetch_all(
            Q["claim"], {"owner": self.ctx.owner, "lease": self.lease_seconds, "limit": free}
        )
        for row in rows:
            task = asyncio.create_task(self._work(row["id"]), name=f"operation-{row['id']}")
            self._running[row["id"]] = task
            task.add_done_callback(functools.partial(self._done, row["id"]))
        return len(rows)

    def _done(self, op_id: uuid.UUID, _task: asyncio.Task[None]) -> None:
        self._running.pop(op_id, None)
        self._wake.set()

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            ids = list(self._running)
            if not ids:
                continue
            try:
                kept = await self.ctx.db.fetch_all(
                    Q["renew"], {"ids": ids, "owner": self.ctx.owner, "lease": self.lease_seconds}
                )
            except Exception:
                log.exception("operation lease renewal failed")
                continue
            for op_id in set(ids) - {row["id"] for row in kept}:
                task = self._running.get(op_id)
                if task is not None:
                    log.warning("lease lost, abandoning operation", extra={"operation": str(op_id)})
                    task.cancel()

    async def _work(self, op_id: uuid.UUID) -> None:
        op: dict[str, Any] | None = None
        try:
            op = await self.ctx.db.fetch_one(Q["get"], {"id": op_id})
            if op is None or op["status"] not in ("queued", "running"):
                return
            await self._run(op)
        except LostLease as exc:
            log.info(
                "stopped working on operation", extra={"operation": str(op_id), "reason": str(exc)}
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if op is not None:
                try:
                    await self._failed(op, exc)
                except Unavailable as lost:
                    log.warning(
                        "could not record an operation's failure; it will be retried",
                        extra={"operation": str(op_id), "error": str(lost), "step_error": str(exc)},
                    )
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(
                    self.ctx.db.execute(Q["release"], {"id": op_id, "owner": self.ctx.owner})
                )

    async def _run(self, op: dict[str, Any]) -> None:
        tenant = await _tenant(self.ctx, op)
        node = await self.ctx.node(tenant["node_id"])
        run = Run(ctx=self.ctx, op=op, tenant=tenant, node=node)
        steps = STEPS[op["kind"]]
        names = [name for name, _ in steps]
        start = names.index(op["step"]) if op.get("step") in names else 0
        for name, step in steps[start:]:
            await self._set_step(op, name)
            await step(run)
        await self._finish(op, succeeded=True, error=None)
        log.info(
            "operation succeeded",
            extra={"operation": str(op["id"]), "kind": op["kind"], "tenant": str(op["tenant_id"])},
        )

    async def _set_step(self, op: dict[str, Any], step: str) -> None:
        if self._stopping:
            raise LostLease("shutting down: the next worker takes over from this step")
        ok = await self.ctx.db.fetch_one(
            Q["set_step"], {"id": op["id"], "step": step, "owner": self.ctx.owner}
        )
        if ok is None:
            raise LostLease(f"operation {op['id']} is no longer ours")
        op["step"] = step

    async def _finish(self, op: dict[str, Any], *, succeeded: bool, error: str | None) -> None:
        async with self.ctx.db.transaction() as tx:
            freed = await tx.fetch_one(
                Q["finish"],
                {
                    "id": op["id"],
                    "status": "succeeded" if succeeded else "failed",
                    "error": error,
                    "owner": self.ctx.owner,
                },
            )
            if freed is None:
                done = await tx.fetch_one(Q["finished"], {"id": op["id"]})
                if done is None:
                    raise LostLease(f"operation {op['id']} changed before it could finish")
                return
            await _settle(tx, op, succeeded)

    async def _failed(self, op: dict[str, Any], exc: Exception) -> None:
        step = op.get("step") or "unknown"
        message = f"{step}: {type(exc).__name__}: {exc}"[:1000]
        transient = isinstance(exc, TransientStep) or (
            not isinstance(exc, PermanentStep)
            and (
                is_transient(exc)
                or isinstance(
                    exc, ProxmoxTaskError | httpx.TransportError | Unavailable | TimeoutError
                )
            )
        )
        attempts = op["attempts"] + 1
        delay = exc.delay if isinstance(exc, TransientStep) else backoff(op["attempts"])
        limit = self.max_attempts * (8 if isinstance(exc, TransientStep) else 1)
        if transient and attempts < limit:
            log.info(
                "operation step will be retried",
                extra={
                    "operation": str(op["id"]),
                    "step": step,
                    "error": str(exc),
                    "attempt": attempts,
                },
            )
            await self.ctx.db.execute(
                Q["retry_later"],
                {"id": op["id"], "owner": self.ctx.owner, "error": message, "delay": delay},
            )
            return
        log.error(
            "operation failed",
            extra={"operation": str(op["id"]), "kind": op["kind"], "step": step, "error": message},
        )
        await self._undo(op)
        await self._finish(op, succeeded=False, error=message)

    async def _undo(self, op: dict[str, Any]) -> None:
        undo = UNDO.get(op["kind"])
        if undo is None:
            return
        try:
            tenant = await _tenant(self.ctx, op)
            node = await self.ctx.node(tenant["node_id"])
            await undo(Run(ctx=self.ctx, op=op, tenant=tenant, node=node))
        except Exception as exc:
            log.warning(
                "could not undo a failed operation",
                extra={"operation": str(op["id"]), "kind": op["kind"], "error": str(exc)},
            )


async def _tenant(ctx: StepContext, op: dict[str, Any]) -> dict[str, Any]:
    row = await ctx.db.fetch_one(Q["tenant_of_operation"], {"id": op["tenant_id"]})
    if row is None or row.get("node_id") is None or row.get("vmid") is None:
        raise PermanentStep("the tenant has no container to work on")
    return row
