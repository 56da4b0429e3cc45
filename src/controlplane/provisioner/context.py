"""What a step needs: the database, Proxmox clients, secrets, the route hook, the lease."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from controlplane.config import DEFAULT_TENANT_NETWORKS
from controlplane.crypto import Sealer
from controlplane.db import Database, load_queries
from controlplane.nodes.registry import ProxmoxRegistry
from controlplane.provisioner.addresses import AddressPolicy
from controlplane.provisioner.observer import NoObserver, WorkerObserver
from controlplane.proxmox import ProxmoxClient

Q = load_queries("controlplane.provisioner")


class RouteHook(Protocol):
    """Where tenant routes go (Caddy); optional."""

    async def upsert_active(self, tenant_id: Any, subdomain: str, upstream: str) -> None: ...
    async def set_suspended(self, tenant_id: Any, subdomain: str) -> None: ...
    async def remove(self, tenant_id: Any) -> None: ...


class LostLease(Exception):
    """Another worker owns the tenant now, or its status changed under us: stop quietly."""


class TransientStep(Exception):
    """Not done yet, try again soon (an address not assigned yet, a clone still running)."""

    def __init__(self, message: str, delay: float = 0.5) -> None:
        super().__init__(message)
        self.delay = delay


class PermanentStep(Exception):
    """Retrying the same thing will not help; the tenant goes to `error` with this message."""


@dataclass
class StepContext:
    db: Database
    registry: ProxmoxRegistry
    sealer: Sealer
    owner: str
    # Where tenant routes go (Caddy, when configured): built before the workers, so the
    # route step of the very first tenant already has it.
    route_hook: RouteHook | None = None
    observer: WorkerObserver = field(default_factory=NoObserver)
    task_timeout: float = 300.0
    # Which addresses a tenant's container may have (TENANT_NETWORKS and the fixed rules).
    addresses: AddressPolicy = field(
        default_factory=lambda: AddressPolicy.build(networks=DEFAULT_TENANT_NETWORKS)
    )
    # Tenants queued for a clone lock: they wait on PostgreSQL, not on Proxmox, so the
    # worker does not count them against its concurrency (see Worker._free_slots).
    clone_waiters: int = 0
    on_wait_change: Any = None
    # Set on SIGTERM: the step in flight finishes, no new step starts, the lease is released.
    stopping: bool = False
    # How long each kind of task took lately on each node (EWMA), to poll near its end.
    task_estimates: dict[tuple[Any, str], float] = field(default_factory=dict)
    # How long a moved tenant's app gets to answer its health check on the target.
    move_health_wait_s: float = 120.0

    async def wait(self, node: dict[str, Any], kind: str, upid: str) -> dict[str, Any]:
        key = (node["id"], kind)
        started = time.monotonic()
        status = await self.client(node).wait_task(
            upid, timeout=self.task_timeout, expected=self.task_estimates.get(key)
        )
        took = time.monotonic() - started
        previous = self.task_estimates.get(key)
        self.task_estimates[key] = took if previous is None else 0.7 * previous + 0.3 * took
        return status

    async def node(self, node_id: Any) -> dict[str, Any]:
        row = await self.db.fetch_one(Q["node_of"], {"id": node_id})
        if row is None:
            raise PermanentStep(f"node {node_id} no longer exists")
        return row

    def client(self, node: dict[str, Any]) -> ProxmoxClient:
        return self.registry.client(node)

    async def set_step(self, tenant: dict[str, Any], step: str) -> None:
        self.observer.step_done(tenant["id"])  # the previous step got this far
        started = time.monotonic()
        if self.stopping:
            raise LostLease("shutting down: the next worker takes over from this step")
        ok = await self.db.fetch_one(
            Q["set_step"],
            {"id": tenant["id"], "status": tenant["status"], "step": step, "owner": self.owner},
        )
        if ok is None:
            raise LostLease(f"tenant {tenant['id']} changed under us")
        tenant["step"] = step
        self.observer.step_started(tenant, step, started)

    def _waiting(self, delta: int) -> None:
        self.clone_waiters += delta
        if self.on_wait_change is not None:
            self.on_wait_change()

    @asynccontextmanager
    async def session_lock(self, name: str) -> AsyncIterator[None]:
        """A PostgreSQL session advisory lock named `name`, across replicas; it dies with
        the process that holds it."""
        digest = hashlib.sha256(name.encode()).digest()
        key = int.from_bytes(digest[:8], "big", signed=True)
        async with self.db.session() as session:
            await session.execute("SELECT pg_advisory_lock(%(key)s)", {"key": key})
            try:
                if self.stopping:
                    raise LostLease(f"shutting down before {name}")
                yield
            finally:
                await session.execute("SELECT pg_advisory_unlock(%(key)s)", {"key": key})

    @asynccontextmanager
    async def clone_lock(self, node_id: Any, template: int) -> AsyncIterator[None]:
        """Clones of one template on one node never overlap, across all replicas.

        Proxmox locks the source container for the whole clone and fails a second clone at
        once, so serialising here saves the failed call and the retry delay. A session
        advisory lock on its own connection dies with the process, so a crash frees it.
        """
        digest = hashlib.sha256(f"clone:{node_id}:{template}".encode()).digest()
        key = int.from_bytes(digest[:8], "big", signed=True)
        async with self.db.session() as session:
            self._waiting(+1)
            try:
                await session.execute("SELECT pg_advisory_lock(%(key)s)", {"key": key})
            finally:
                self._waiting(-1)
            try:
                if self.stopping:
                    raise LostLease("shutting down before the clone started")
                yield
            finally:
                await session.execute("SELECT pg_advisory_unlock(%(key)s)", {"key": key})
