"""The worker: claims tenants that need work, runs their operation, retries what is transient.

Any number of worker processes share one database. A tenant is claimed with
`FOR UPDATE SKIP LOCKED` plus a lease that the worker renews while it works; if the process
dies, the lease runs out and another worker picks the tenant up where the row says it is.
On SIGTERM (`stop()`), the worker stops claiming, gives in-flight work up to `grace`
seconds, cancels what is left, and releases its leases so others take over at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import random
import socket
import uuid
from typing import Any

import httpx
import psycopg

from controlplane.db.gateway import Unavailable
from controlplane.provisioner.context import LostLease, PermanentStep, Q, StepContext, TransientStep
from controlplane.provisioner.operations import OPERATIONS, apply_config
from controlplane.proxmox import ProxmoxTaskError, is_transient
from controlplane.tasks import finish_or_cancel

log = logging.getLogger(__name__)


def backoff(attempt: int, *, base: float = 0.5, cap: float = 30.0) -> float:
    """Exponential backoff with full jitter between half and the whole delay."""
    delay = min(cap, base * 2**attempt)
    return delay * (0.5 + random.random() / 2)


class Worker:
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
        self._loop_task: asyncio.Task[None] | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._listen_task: asyncio.Task[None] | None = None
        ctx.on_wait_change = self._wake.set

    @staticmethod
    def make_owner() -> str:
        return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    @property
    def in_flight(self) -> int:
        return len(self._running)

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._claim_loop(), name="worker-claim")
        self._heartbeat_task = asyncio.create_task(self._heartbeat(), name="worker-heartbeat")
        self._listen_task = asyncio.create_task(self._listen(), name="worker-listen")

    async def _listen(self) -> None:
        """Wake the claim loop on NOTIFY from the tenants trigger; polling stays the fallback."""
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.ctx.db.url, autocommit=True
                ) as conn:
                    await conn.execute("LISTEN controlplane_work")
                    async for _ in conn.notifies():
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("work notifications lost; reconnecting", extra={"error": str(exc)})
                await asyncio.sleep(2.0)

    async def stop(self, grace: float = 10.0) -> None:
        """Stop claiming; steps in flight get `grace` seconds; then leases are released."""
        self._stopping = True
        self.ctx.stopping = True
        self._wake.set()
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        await finish_or_cancel(self._running.values(), grace)
        helpers = [t for t in (self._heartbeat_task, self._listen_task) if t is not None]
        for task in helpers:
            task.cancel()
        if helpers:
            # Bounded: a driver call that does not honour cancellation must not block exit.
            await asyncio.wait(helpers, timeout=2.0)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                self.ctx.db.execute(Q["release_all"], {"owner": self.ctx.owner}), timeout=5.0
            )

    async def run_until_idle(self, timeout: float = 60.0) -> None:
        """For tests and tools: work until nothing is claimable or running."""
        async with asyncio.timeout(timeout):
            while True:
                claimed = await self._claim_and_spawn()
                if not claimed and not self._running:
                    pending = await self.ctx.db.fetch_val(Q["pending_work"])
                    if not pending:
                        return
                    await asyncio.sleep(0.05)  # retries scheduled for later
                    continue
                if self._running:
                    await asyncio.wait(
                        list(self._running.values()), return_when=asyncio.FIRST_COMPLETED
                    )

    async def _claim_loop(self) -> None:
        while not self._stopping:
            try:
                await self._claim_and_spawn()
            except Exception:
                log.exception("claiming work failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)

    def _free_slots(self) -> int:
        # Tenants queued for a clone lock cost a DB connection, not Proxmox work; up to
        # `concurrency` of them are not counted, so other nodes' work keeps flowing.
        waiting = min(self.ctx.clone_waiters, self.concurrency)
        return self.concurrency - (len(self._running) - waiting)

    async def _claim_and_spawn(self) -> int:
        free = self._free_slots()
        if free <= 0 or self._stopping:
            return 0
        rows = await self.ctx.db.fetch_all(
            Q["claim"], {"owner": self.ctx.owner, "lease": self.lease_seconds, "limit": free}
        )
        for row in rows:
            task = asyncio.create_task(self._process(row["id"]), name=f"tenant-{row['id']}")
            self._running[row["id"]] = task
            task.add_done_callback(functools.partial(self._done, row["id"]))
        return len(rows)

    def _done(self, tenant_id: uuid.UUID, _task: asyncio.Task[None]) -> None:
        self._running.pop(tenant_id, None)
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
                log.exception("lease renewal failed")
                continue
            lost = set(ids) - {row["id"] for row in kept}
            for tenant_id in lost:
                task = self._running.get(tenant_id)
                if task is not None:
                    log.warning("lease lost, abandoning tenant", extra={"tenant": str(tenant_id)})
                    task.cancel()

    async def _process(self, tenant_id: uuid.UUID) -> None:
        try:
            await self._work(tenant_id)
        except asyncio.CancelledError:
            # Not stopping: the heartbeat cancelled us because another worker has the lease.
            self.ctx.observer.abandoned(tenant_id, lease_lost=not self._stopping)
            raise
        self.ctx.observer.step_done(tenant_id)  # the operation's last step, up to its swap

    async def _work(self, tenant_id: uuid.UUID) -> None:
        tenant: dict[str, Any] | None = None
        try:
            tenant = await self.ctx.db.fetch_one(Q["get"], {"id": tenant_id})
            if tenant is None:
                return
            operation = OPERATIONS.get(tenant["status"])
            if operation is not None:
                await operation(self.ctx, tenant)
            elif tenant["config_pending"] and tenant["status"] in ("active", "suspended"):
                await apply_config(self.ctx, tenant)
        except LostLease as exc:
            log.info(
                "stopped working on tenant", extra={"tenant": str(tenant_id), "reason": str(exc)}
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if tenant is not None:
                try:
                    await self._failed(tenant, exc)
                except Unavailable as lost:
                    # The database went away: the outcome cannot be recorded now. The lease
                    # runs out and the tenant is claimed again from the step its row names.
                    log.warning(
                        "could not record a step's failure; the tenant will be retried",
                        extra={
                            "tenant": str(tenant_id),
                            "error": str(lost),
                            "step_error": str(exc),
                        },
                    )
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(
                    self.ctx.db.execute(Q["release"], {"id": tenant_id, "owner": self.ctx.owner})
                )

    async def _failed(self, tenant: dict[str, Any], exc: Exception) -> None:
        self.ctx.observer.step_failed(tenant, exc)
        step = tenant.get("step") or "unknown"
        message = f"{step}: {type(exc).__name__}: {exc}"[:1000]
        # A failed Proxmox task is worth a few more tries (the step looks again first);
        # parameter, permission and "not ours" problems are not.
        transient = isinstance(exc, TransientStep) or (
            not isinstance(exc, PermanentStep)
            and (
                is_transient(exc)
                or isinstance(
                    exc, ProxmoxTaskError | httpx.TransportError | Unavailable | TimeoutError
                )
            )
        )
        attempts = tenant["attempts"] + 1
        if isinstance(exc, TransientStep) and exc.delay == 0:
            delay = 0.0
        elif isinstance(exc, TransientStep):
            delay = exc.delay
        else:
            delay = backoff(tenant["attempts"])
        # Waiting for a clone or an address is progress, not failure: it gets more patience.
        limit = self.max_attempts * (8 if isinstance(exc, TransientStep) else 1)
        if transient and attempts < limit:
            log.info(
                "step will be retried",
                extra={
                    "tenant": str(tenant["id"]),
                    "step": step,
                    "error": str(exc),
                    "attempt": attempts,
                    "delay": round(delay, 2),
                },
            )
            await self.ctx.db.execute(
                Q["retry_later"],
                {
                    "id": tenant["id"],
                    "owner": self.ctx.owner,
                    "error": message,
                    "step": step,
                    "delay": delay,
                },
            )
            return
        log.error(
            "tenant failed", extra={"tenant": str(tenant["id"]), "step": step, "error": message}
        )
        await self.ctx.db.execute(
            Q["fail"],
            {
                "id": tenant["id"],
                "owner": self.ctx.owner,
                "from": tenant["status"],
                "step": step,
                "error": message,
            },
        )
