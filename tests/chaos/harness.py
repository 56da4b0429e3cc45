"""Real control plane processes on one database, killed and restarted at will."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.conftest import ADMIN_TOKEN, ENCRYPTION_KEY, JWT_SECRET


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServeProcess:
    """`controlplane serve` (API and workers) on its own port."""

    database_url: str
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    env: dict[str, str] = field(default_factory=dict)  # extra settings for this process

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "API_TOKEN": ADMIN_TOKEN,
            "ENCRYPTION_KEY": ENCRYPTION_KEY,
            "JWT_SECRET": JWT_SECRET,
            "WORKER_LEASE_SECONDS": "3",
            "NODE_POLL_SECONDS": "2",
            "TENANT_POLL_SECONDS": "3600",
            "DB_POOL_MAX": "10",
            "LOG_LEVEL": "WARNING",
            **self.env,
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "controlplane.cli", "serve", "--port", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.starts += 1

    async def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.url, timeout=2.0) as c:
            while time.monotonic() < deadline:
                try:
                    if (await c.get("/healthz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise TimeoutError(f"serve on {self.port} not healthy within {timeout} s")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


async def create_tenants(procs: list[ServeProcess], project_id: str, n: int, prefix: str) -> int:
    """POST n tenants at once, spread over the processes; retried on a dead process.

    A create whose answer was lost may have committed: its retry then gets 409 (subdomain
    taken), which counts as created.
    """
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    async def one(i: int) -> None:
        for attempt in range(200):
            target = procs[(i + attempt) % len(procs)]
            try:
                async with httpx.AsyncClient(base_url=target.url, headers=headers, timeout=10) as c:
                    r = await c.post(
                        "/api/v1/tenants",
                        json={"project_id": project_id, "subdomain": f"{prefix}{i}"},
                    )
                if r.status_code == 202:
                    return
                if r.status_code == 409 and "is taken" in r.json()["error"]["message"]:
                    return  # an earlier attempt committed but its answer was lost
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
        raise AssertionError(f"could not create tenant {i}")

    await asyncio.gather(*(one(i) for i in range(n)))
    return n


async def wait_converged(db: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pending = await db.fetch_val(
            "SELECT count(*) FROM tenants WHERE status IN"
            " ('provisioning', 'suspending', 'resuming', 'deleting') OR config_pending"
        )
        if pending == 0:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{pending} tenants still in between after {timeout} s")


async def wait_pools_settled(db: Any, timeout: float) -> None:
    """No spare in between (being built or destroyed): every refill finished or was cleaned."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pending = await db.fetch_val(
            "SELECT count(*) FROM spares WHERE status IN ('cloning', 'retiring')"
        )
        if pending == 0:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{pending} spares still in between after {timeout} s")


async def wait_pools_full(db: Any, ready: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await db.fetch_val("SELECT count(*) FROM spares WHERE status = 'ready'") >= ready:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"fewer than {ready} spares ready after {timeout} s")


async def audit_outcome(db: Any, sim: Any) -> dict[str, Any]:
    """The counts the chaos suites print and check.

    The RAM ledger's rule (migration 0022): a node's allocated_ram_mb is exactly the sum of
    its live tenants' ram_mb; warm pool spares are stopped and count 0. Spares are checked
    on their own: each ready one has its container, every spare-marked container has its
    row or became a tenant, and no spare was taken twice or shares a VMID with a tenant.
    """
    rows = await db.fetch_all("SELECT id, status, vmid, last_error, spare_id FROM tenants")
    spares = await db.fetch_all("SELECT id, vmid, status FROM spares")
    live = [r for r in rows if r["status"] != "deleted"]
    live_vmids = {r["vmid"] for r in live}
    spare_vmids = {r["vmid"] for r in spares}
    # A tenant in error may have failed before its clone existed; the others must have one.
    running_vmids = {r["vmid"] for r in live if r["status"] != "error"}
    containers = {vmid: ct for vmid, ct in sim.containers.items() if not ct.is_template}
    ledger = await db.fetch_all(
        "SELECT n.name, n.allocated_ram_mb, coalesce(sum(t.ram_mb) FILTER"
        " (WHERE t.status <> 'deleted'), 0) AS used"
        " FROM nodes n LEFT JOIN tenants t ON t.node_id = n.id GROUP BY n.id"
    )
    by_status: dict[str, int] = {}
    for r in rows:
        by_status[r["status"]] = by_status.get(r["status"], 0) + 1
    taken = [r["spare_id"] for r in rows if r["spare_id"] is not None]
    spare_ids = {str(r["id"]) for r in spares}
    return {
        "tenants": len(rows),
        "by_status": by_status,
        "errors_without_reason": sum(
            1 for r in rows if r["status"] == "error" and not r["last_error"]
        ),
        "containers_without_live_tenant": len(set(containers) - live_vmids - spare_vmids),
        "live_tenants_without_container": len(running_vmids - set(containers)),
        "errors": [r["last_error"] for r in rows if r["status"] == "error"][:10],
        "ledger_mismatches": [dict(r) for r in ledger if r["allocated_ram_mb"] != r["used"]],
        "spares": len(spares),
        "spares_taken": len(taken),
        "spares_taken_twice": len(taken) - len(set(taken)),
        "spares_sharing_a_tenants_vmid": len(spare_vmids & live_vmids),
        "ready_spares_without_container": sum(
            1 for r in spares if r["status"] == "ready" and r["vmid"] not in containers
        ),
        "spare_containers_without_row": sum(
            1
            for vmid, ct in containers.items()
            if "controlplane spare" in str(ct.config.get("description") or "")
            and vmid not in live_vmids
            and not any(i in str(ct.config.get("description")) for i in spare_ids)
        ),
    }
