"""Chaos: tenants created at once while two control plane processes (API and workers on one
database) are SIGKILLed at random moments and restarted. Then every tenant is `active` (or
`error` with a reason when Proxmox faults were injected), no container lacks a live tenant,
no live tenant lacks its container, and every node's RAM ledger is exact.

Small versions run in `make test`; `make proof` runs the full ones (-m slow). Run with `-s`
to see the printed counts.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time

import pytest

from tests.chaos.harness import (
    ServeProcess,
    audit_outcome,
    create_tenants,
    wait_converged,
    wait_pools_full,
    wait_pools_settled,
)
from tests.conftest import SimHandle

FAULTS = json.loads(
    os.environ.get("CHAOS_FAULTS")
    or '{"task_failure_rate": 0.10, "http_5xx_rate": 0.05, "drop_rate": 0.02, "stuck_lock_seconds": 0.5}'
)


async def run_chaos(
    admin,
    app,
    pve_sim: SimHandle,
    settings,
    *,
    tenants: int,
    kills: int,
    faults: dict | None,
    seed: int,
    warm_pool: int = 0,
) -> dict:  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    sim = pve_sim.sim
    sim.durations.update({"vzclone": 0.1, "vzstart": 0.05, "vzstop": 0.03, "vzdestroy": 0.03})  # type: ignore[attr-defined]
    projects = []
    for name in ("pve1", "pve2"):
        r = await admin.post("/api/v1/nodes", json=pve_sim.node_body(name, total_ram_mb=1_000_000))
        assert r.status_code == 201, r.text
        template = r.json()["templates"][0]
        r = await admin.post(
            "/api/v1/projects",
            json={
                "name": name,
                "slug": f"p-{name}",
                "template_vmid": template,
                "ram_mb": 256,
                "warm_pool_size": warm_pool,
            },
        )
        projects.append(r.json()["id"])
    if faults:
        sim.faults.update(faults)  # type: ignore[attr-defined]

    env = {"WARM_POOL_SECONDS": "0.2", "WARM_POOL_CONCURRENCY": "3"}
    procs = [ServeProcess(settings.database_url, env=env) for _ in range(2)]
    for p in procs:
        p.start()
    await asyncio.gather(*(p.wait_healthy() for p in procs))
    if warm_pool:  # full pools first, so the kills land on takes as well as on refills
        await wait_pools_full(app.state.cp.db, warm_pool * len(projects), timeout=60)
    started = time.monotonic()
    try:
        creating = asyncio.gather(
            *(create_tenants(procs, pid, tenants // 2, f"c{i}x") for i, pid in enumerate(projects))
        )
        for _ in range(kills):
            await asyncio.sleep(rng.uniform(0.2, 1.2))
            victim = rng.choice(procs)
            victim.kill()
            victim.start()
        await creating
        await asyncio.gather(*(p.wait_healthy() for p in procs))
        await wait_converged(app.state.cp.db, timeout=120 + tenants)
        await wait_pools_settled(app.state.cp.db, timeout=120)
        elapsed = time.monotonic() - started
    finally:
        for p in procs:
            p.stop()
    outcome = await audit_outcome(app.state.cp.db, sim)
    outcome.update(
        kills=kills,
        restarts=sum(p.starts for p in procs) - 2,
        seconds=round(elapsed, 1),
        faults=faults or {},
    )
    print("\nchaos outcome:", json.dumps(outcome, default=str))
    return outcome


def check(outcome: dict, tenants: int, *, faults: bool) -> None:
    assert outcome["tenants"] == tenants
    assert outcome["containers_without_live_tenant"] == 0
    assert outcome["live_tenants_without_container"] == 0
    assert outcome["ledger_mismatches"] == []
    assert outcome["errors_without_reason"] == 0
    for key in (
        "spares_taken_twice",
        "spares_sharing_a_tenants_vmid",
        "ready_spares_without_container",
        "spare_containers_without_row",
    ):
        assert outcome[key] == 0, key
    allowed = {"active", "error"} if faults else {"active"}
    assert set(outcome["by_status"]) <= allowed, outcome["by_status"]


async def test_chaos_small(admin, app, pve_sim, settings) -> None:  # type: ignore[no-untyped-def]
    outcome = await run_chaos(
        admin, app, pve_sim, settings, tenants=30, kills=4, faults=None, seed=1
    )
    check(outcome, 30, faults=False)


async def test_proxmox_faults_small(admin, app, pve_sim, settings) -> None:  # type: ignore[no-untyped-def]
    outcome = await run_chaos(
        admin, app, pve_sim, settings, tenants=20, kills=0, faults=FAULTS, seed=2
    )
    check(outcome, 20, faults=True)
    assert outcome["by_status"] == {"active": 20}, "with retries, every tenant converges"


async def test_chaos_warm_pool_small(admin, app, pve_sim, settings) -> None:  # type: ignore[no-untyped-def]
    """Spares refilled and taken while both processes are killed: none taken twice, none
    lost, the ledger exact."""
    outcome = await run_chaos(
        admin, app, pve_sim, settings, tenants=30, kills=4, faults=None, seed=4, warm_pool=3
    )
    check(outcome, 30, faults=False)
    assert outcome["spares_taken"] > 0


@pytest.mark.slow
async def test_chaos_warm_pool_full(admin, app, pve_sim, settings) -> None:  # type: ignore[no-untyped-def]
    outcome = await run_chaos(
        admin, app, pve_sim, settings, tenants=200, kills=20, faults=None, seed=5, warm_pool=5
    )
    check(outcome, 200, faults=False)
    assert outcome["spares_taken"] > 0


@pytest.mark.slow
async def test_chaos_full(admin, app, pve_sim, settings) -> None:  # type: ignore[no-untyped-def]
    outcome = await run_chaos(
        admin, app, pve_sim, settings, tenants=200, kills=20, faults=None, seed=3
    )
    check(outcome, 200, faults=False)


@pytest.mark.slow
async def test_proxmox_faults_full(admin, app, pve_sim, settings) -> None:  # type: ignore[no-untyped-def]
    outcome = await run_chaos(
        admin, app, pve_sim, settings, tenants=200, kills=0, faults=FAULTS, seed=4
    )
    check(outcome, 200, faults=True)
    assert outcome["by_status"] == {"active": 200}, "with retries, every tenant converges"


@pytest.mark.slow
async def test_chaos_with_faults_full(admin, app, pve_sim, settings) -> None:  # type: ignore[no-untyped-def]
    outcome = await run_chaos(
        admin, app, pve_sim, settings, tenants=200, kills=20, faults=FAULTS, seed=5
    )
    check(outcome, 200, faults=True)
