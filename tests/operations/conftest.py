"""A control plane with a simulated cluster, a tenant worker and an operation worker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from controlplane.operations.worker import OperationWorker
from tests.provisioner.conftest import Plane, make_worker, plane

__all__ = ["Life", "make_worker", "plane"]


@dataclass
class Life:
    """The plane plus the lifecycle's worker, and helpers to drive both to rest."""

    plane: Plane
    ops: OperationWorker

    @property
    def admin(self) -> httpx.AsyncClient:
        return self.plane.admin

    @property
    def db(self) -> Any:
        return self.plane.db

    @property
    def sim(self) -> Any:
        return self.plane.sim.sim

    async def settle(self, timeout: float = 60.0) -> None:
        """Run both workers until neither has anything left to do."""
        for _ in range(5):
            await self.ops.run_until_idle(timeout=timeout)
            await self.plane.worker.run_until_idle(timeout=timeout)
            pending = await self.db.fetch_val(
                "SELECT count(*) FROM operations WHERE status IN ('queued', 'running')"
            )
            if not pending:
                return

    async def active_tenant(self, subdomain: str = "shop") -> dict[str, Any]:
        tenant = await self.plane.create(subdomain)
        await self.plane.worker.run_until_idle(timeout=60)
        tenant = await self.plane.tenant(tenant["id"])
        assert tenant["status"] == "active", tenant
        return tenant

    async def operation(self, op_id: str) -> dict[str, Any]:
        r = await self.admin.get(f"/api/v1/operations/{op_id}")
        assert r.status_code == 200, r.text
        return r.json()

    async def run(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """Ask for an operation (202), drive it, and return it finished."""
        r = await self.admin.request(method, path, **kwargs)
        assert r.status_code == 202, r.text
        op = r.json()
        assert r.headers["location"] == f"/api/v1/operations/{op['id']}"
        await self.settle()
        return await self.operation(op["id"])

    def container(self, vmid: int) -> Any:
        return self.sim.containers[vmid]


def make_operations(plane: Plane) -> OperationWorker:
    return OperationWorker(plane.worker.ctx, lease_seconds=5.0, poll_interval=0.05)


@pytest.fixture
async def life(plane: Plane) -> AsyncIterator[Life]:
    yield Life(plane, make_operations(plane))
