"""Chaos for moves of both methods: tenants moved back and forth while two control plane
processes are SIGKILLed at random moments and restarted.

The tenants are linked clones on a local zfspool, which Proxmox refuses to migrate, so each
one's first move is a backup and restore through a shared NFS store; the restored copy is
a full one, so the moves after it are restart migrations. Afterwards every move has
succeeded, each tenant is active on exactly one node (its row's node is where its container
runs), no archive or backup row is left, nothing is half-way and every node's RAM ledger is
exact.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from controlplane.pvesim.storage import Storage
from tests.chaos.harness import ServeProcess, audit_outcome, create_tenants, wait_converged
from tests.chaos.test_operations_chaos import _call, _run_one
from tests.conftest import SimHandle, start_sim

NFS = Storage("nfs", "nfs", frozenset({"backup"}), shared=True, path="/mnt/pve/nfs")
MOVES = 3  # backup and restore, then two migrations


@pytest.fixture
async def pve_sim() -> AsyncIterator[SimHandle]:
    handle, server = await start_sim(
        storage="local-zfs", storage_type="zfspool", extra_storages=[NFS]
    )
    yield handle
    await server.close()  # type: ignore[attr-defined]
    await handle.sim.close()  # type: ignore[attr-defined]


async def run_move_chaos(
    admin: Any, app: Any, pve_sim: SimHandle, settings: Any, *, tenants: int, kills: int, seed: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    sim: Any = pve_sim.sim
    sim.durations.update(
        {"vzclone": 0.1, "vzstart": 0.05, "vzstop": 0.05, "vzshutdown": 0.05, "vzdestroy": 0.05,
         "vzdump": 0.3, "vzrestore": 0.3, "imgdel": 0.05, "vzmigrate": 0.3}
    )  # fmt: skip
    templates = []
    for name in ("pve1", "pve2"):
        r = await admin.post("/api/v1/nodes", json=pve_sim.node_body(name, total_ram_mb=1_000_000))
        assert r.status_code == 201, r.text
        templates.append(r.json()["templates"][0])
    r = await admin.post(
        "/api/v1/projects",
        json={"name": "Web", "slug": "web", "template_vmid": templates[0], "ram_mb": 256},
    )
    project_id = r.json()["id"]
    procs = [ServeProcess(settings.database_url), ServeProcess(settings.database_url)]
    for p in procs:
        p.start()
    await asyncio.gather(*(p.wait_healthy() for p in procs))
    started = time.monotonic()
    results: list[dict[str, Any]] = []
    try:
        await create_tenants(procs, project_id, tenants, "mv")
        await wait_converged(app.state.cp.db, timeout=60 + tenants)
        rows = (await _call(procs, "GET", "/api/v1/tenants", None)).json()["items"]

        async def drive(tenant: dict[str, Any]) -> None:
            for _ in range(MOVES):
                results.append(await _run_one(procs, tenant, "POST", "move-other", None))

        driving = asyncio.gather(*(drive(t) for t in rows))
        for _ in range(kills):
            await asyncio.sleep(rng.uniform(0.3, 1.5))
            victim = rng.choice(procs)
            victim.kill()
            victim.start()
        await driving
        await asyncio.gather(*(p.wait_healthy() for p in procs))
        await wait_converged(app.state.cp.db, timeout=60)
        elapsed = time.monotonic() - started
    finally:
        for p in procs:
            p.stop()
    db = app.state.cp.db
    outcome = await audit_outcome(db, sim)
    placed = await db.fetch_all(
        "SELECT t.vmid, n.pve_node FROM tenants t JOIN nodes n ON n.id = t.node_id"
        " WHERE t.status <> 'deleted'"
    )
    outcome.update(
        kills=kills,
        seconds=round(elapsed, 1),
        moves=len(results),
        methods=sorted(str(r.get("method")) for r in results),
        moves_failed=[r["error"] for r in results if r["status"] != "succeeded"],
        not_where_the_row_says=[
            r["vmid"]
            for r in placed
            if r["vmid"] not in sim.containers or sim.containers[r["vmid"]].node != r["pve_node"]
        ],
        not_running=[
            r["vmid"]
            for r in placed
            if r["vmid"] in sim.containers and not sim.containers[r["vmid"]].running
        ],
        archives_left=sorted(b.volid for b in sim.backups.values()),
        backup_rows_left=await db.fetch_val("SELECT count(*) FROM backups"),
        rows_half_way=await db.fetch_val(
            "SELECT (SELECT count(*) FROM operations WHERE status IN ('queued', 'running'))"
            " + (SELECT count(*) FROM tenants WHERE operation_id IS NOT NULL)"
        ),
    )
    print("\nmove chaos outcome:", json.dumps(outcome, default=str))
    return outcome


def check(outcome: dict[str, Any], tenants: int) -> None:
    assert outcome["by_status"] == {"active": tenants}, outcome
    assert outcome["moves"] == tenants * MOVES
    assert outcome["moves_failed"] == [], outcome
    assert outcome["methods"].count("backup_restore") == tenants, outcome
    assert outcome["methods"].count("migrate") == tenants * (MOVES - 1), outcome
    assert outcome["containers_without_live_tenant"] == 0
    assert outcome["live_tenants_without_container"] == 0
    assert outcome["not_where_the_row_says"] == [], outcome
    assert outcome["not_running"] == [], outcome
    assert outcome["archives_left"] == [] and outcome["backup_rows_left"] == 0, outcome
    assert outcome["ledger_mismatches"] == []
    assert outcome["rows_half_way"] == 0


async def test_move_chaos_small(admin, app, pve_sim, settings) -> None:  # type: ignore[no-untyped-def]
    outcome = await run_move_chaos(admin, app, pve_sim, settings, tenants=3, kills=4, seed=21)
    check(outcome, 3)


@pytest.mark.slow
async def test_move_chaos_full(admin, app, pve_sim, settings) -> None:  # type: ignore[no-untyped-def]
    outcome = await run_move_chaos(admin, app, pve_sim, settings, tenants=10, kills=16, seed=22)
    check(outcome, 10)
