"""A worker process killed with SIGKILL in each provisioning step, then restarted: every
tenant converges, no container is orphaned or duplicated, and the RAM ledger is exact."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ADMIN_TOKEN, ENCRYPTION_KEY, JWT_SECRET, terminate_backends
from tests.provisioner.conftest import Plane

STEPS = ["clone", "configure", "start", "address", "route"]


def spawn_worker(database_url: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "API_TOKEN": ADMIN_TOKEN,
        "ENCRYPTION_KEY": ENCRYPTION_KEY,
        "JWT_SECRET": JWT_SECRET,
        "WORKER_LEASE_SECONDS": "2",
        "WORKER_CONCURRENCY": "4",
        "NODE_POLL_SECONDS": "3600",
        "TENANT_POLL_SECONDS": "3600",
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "controlplane.cli", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def wait_for_step(plane: Plane, step: str, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hit = await plane.db.fetch_val(
            "SELECT count(*) FROM tenants WHERE status = 'provisioning' AND step = %(s)s",
            {"s": step},
        )
        if hit:
            return True
        await asyncio.sleep(0.01)
    return False


async def test_sigkill_in_each_step_then_converge(plane: Plane, settings) -> None:  # type: ignore[no-untyped-def]
    plane.sim.sim.durations.update({"vzclone": 0.3, "vzstart": 0.2})  # type: ignore[attr-defined]
    tenants = [await plane.create(f"c{i}") for i in range(12)]
    killed_in = []
    for step in STEPS:
        proc = spawn_worker(settings.database_url)
        try:
            if await wait_for_step(plane, step):
                proc.send_signal(signal.SIGKILL)
                killed_in.append(step)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
    assert len(killed_in) >= 3, killed_in  # the later steps can be too quick to catch every time

    # A fresh worker (in process) takes over once the dead workers' leases run out.
    await asyncio.sleep(2.1)
    await plane.worker.run_until_idle(timeout=90)

    live_vmids = set()
    for t in tenants:
        got = await plane.tenant(t["id"])
        assert got["status"] == "active", got
        live_vmids.add(got["vmid"])
    containers = plane.sim_containers()
    assert set(containers) == live_vmids, "orphaned or missing containers"
    assert all(ct.running for ct in containers.values())
    assert await plane.ledger_exact()


@pytest.mark.slow
async def test_sigkill_at_random_moments_many_times(plane: Plane, settings) -> None:  # type: ignore[no-untyped-def]
    import random

    rng = random.Random(7)
    tenants = [await plane.create(f"r{i}") for i in range(40)]
    for _ in range(15):
        proc = spawn_worker(settings.database_url)
        await asyncio.sleep(rng.uniform(0.8, 2.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    await asyncio.sleep(2.1)
    await plane.worker.run_until_idle(timeout=180)
    vmids = {(await plane.tenant(t["id"]))["vmid"] for t in tenants}
    assert set(plane.sim_containers()) == vmids
    assert await plane.ledger_exact()


async def test_workers_carry_on_when_the_database_drops_every_connection(
    plane: Plane, database_url: str
) -> None:
    """A PostgreSQL restart mid-flight: the pool, the LISTEN connection and the steps in
    progress all lose their connections; every tenant still ends active, ledger exact."""

    worker = plane.worker
    worker.poll_interval = 1.0  # the production default: the fallback when NOTIFY is lost
    worker.start()
    try:
        tenants = [await plane.create(f"blip{i}") for i in range(6)]
        await asyncio.sleep(0.3)  # some are mid-step now
        # At least the pool and the LISTEN connection.
        assert terminate_backends(database_url) >= 2
        for _ in range(20):  # the API answers 503 until its pool has replaced the dead ones
            r = await plane.admin.post(
                "/api/v1/tenants",
                json={"project_id": plane.project["id"], "subdomain": "after-blip"},
            )
            if r.status_code == 202:
                tenants.append(r.json())
                break
            assert r.status_code == 503, r.text
        else:
            raise AssertionError("the API never recovered")
        async with asyncio.timeout(60):
            while True:
                statuses = [(await plane.tenant(t["id"]))["status"] for t in tenants]
                if all(s == "active" for s in statuses):
                    break
                assert "error" not in statuses, statuses
                await asyncio.sleep(0.2)
    finally:
        await worker.stop(grace=5)
    assert await plane.ledger_exact()
    assert len(plane.sim_containers()) == len(tenants)
