"""A control plane with a simulated cluster registered, and a worker to drive it by hand."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from controlplane.provisioner.addresses import AddressPolicy
from controlplane.provisioner.context import StepContext
from controlplane.provisioner.worker import Worker
from tests.conftest import SimHandle


@dataclass
class Plane:
    admin: httpx.AsyncClient
    app: Any
    sim: SimHandle
    worker: Worker
    nodes: list[dict[str, Any]]
    project: dict[str, Any]

    @property
    def db(self) -> Any:
        return self.app.state.cp.db

    async def create(self, subdomain: str, **body: Any) -> dict[str, Any]:
        r = await self.admin.post(
            "/api/v1/tenants",
            json={"project_id": self.project["id"], "subdomain": subdomain, **body},
        )
        assert r.status_code == 202, r.text
        return r.json()

    async def tenant(self, tenant_id: str) -> dict[str, Any]:
        r = await self.admin.get(f"/api/v1/tenants/{tenant_id}")
        assert r.status_code == 200, r.text
        return r.json()

    def sim_containers(self) -> dict[int, Any]:
        """Non-template containers in the simulator, by VMID."""
        return {
            vmid: ct
            for vmid, ct in self.sim.sim.containers.items()  # type: ignore[attr-defined]
            if not ct.is_template
        }

    async def ledger_exact(self) -> bool:
        rows = await self.db.fetch_all(
            "SELECT n.id, n.allocated_ram_mb, coalesce(sum(t.ram_mb) FILTER"
            " (WHERE t.status <> 'deleted'), 0) AS used"
            " FROM nodes n LEFT JOIN tenants t ON t.node_id = n.id GROUP BY n.id"
        )
        return all(r["allocated_ram_mb"] == r["used"] for r in rows)


def make_worker(
    app: Any, *, concurrency: int = 10, lease: float = 5.0, route_hook: Any = None
) -> Worker:
    """A worker on the app's services; `route_hook` replaces the app's (Caddy) hook."""
    state = app.state.cp
    ctx = StepContext(
        db=state.db,
        registry=state.proxmox,
        sealer=state.sealer,
        owner=Worker.make_owner(),
        route_hook=route_hook or state.route_hook,
        addresses=AddressPolicy.from_settings(state.settings),
        task_timeout=30.0,
    )
    return Worker(ctx, concurrency=concurrency, lease_seconds=lease, poll_interval=0.05)


@pytest.fixture
async def plane(admin: httpx.AsyncClient, app: Any, pve_sim: SimHandle) -> AsyncIterator[Plane]:
    from controlplane.pvesim.ssh import start_ssh_server
    from controlplane.sshexec import generate_keypair

    keys = generate_keypair()
    nodes, ssh_servers = [], []
    for name in ("pve1", "pve2"):
        ssh = await start_ssh_server(pve_sim.sim, authorized_key=keys.public_openssh, node=name)  # type: ignore[arg-type]
        ssh_servers.append(ssh)
        body = pve_sim.node_body(
            name,
            ssh_host=ssh.host,
            ssh_port=ssh.port,
            ssh_private_key=keys.private_pem,
            ssh_host_key=ssh.host_public_key,
        )
        r = await admin.post("/api/v1/nodes", json=body)
        assert r.status_code == 201, r.text
        nodes.append(r.json())
    r = await admin.post(
        "/api/v1/projects",
        json={"name": "Web", "slug": "web", "template_vmid": 9000, "ram_mb": 512, "app_port": 8080},
    )
    assert r.status_code == 201, r.text
    yield Plane(admin, app, pve_sim, make_worker(app), nodes, r.json())
    for ssh in ssh_servers:
        await ssh.close()
