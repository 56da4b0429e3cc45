"""Chaos for the lifecycle: every kind of operation on several tenants while two control
plane processes are SIGKILLed at random moments and restarted.

Afterwards every operation has finished, each tenant is `active` on exactly one container,
no container lacks a live tenant, every snapshot and backup volume on Proxmox has its row
(and every row that says `ready` its volume), no row is stuck half-way, and every node's
RAM ledger is exact. Small version in `make test`, the full one in `make proof`.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

import httpx
import pytest

from tests.chaos.harness import ServeProcess, audit_outcome, create_tenants, wait_converged
from tests.conftest import ADMIN_TOKEN, SimHandle

HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def script(tenant: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """Every kind once, in an order where each step has what it needs."""
    return [
        ("POST", "snapshots", {"name": "first"}),
        ("POST", "backups", None),
        ("POST", "resize", {"ram_mb": 384, "cores": 2, "disk_gb": 10}),
        ("POST", "restart", None),
        ("POST", "snapshots/first/rollback", None),
        ("POST", "restore-latest", {"confirm": tenant["subdomain"]}),
        ("POST", "snapshots", {"name": "second"}),
        # Rebuild before the move: only the first node holds the template. The rebuild drops
        # the snapshots, which would block the migration of a local disk.
        ("POST", "rebuild", {"confirm": tenant["subdomain"]}),
        ("POST", "move-other", None),
        ("POST", "backups", None),
        ("DELETE", "backups-oldest", None),
    ]


async def _call(
    procs: list[ServeProcess], method: str, path: str, body: Any = None
) -> httpx.Response:
    for attempt in range(400):
        target = procs[attempt % len(procs)]
        try:
            async with httpx.AsyncClient(base_url=target.url, headers=HEADERS, timeout=10) as c:
                return await c.request(method, path, json=body)
        except httpx.HTTPError:
            await asyncio.sleep(0.1)
    raise AssertionError(f"{method} {path}: no process answered")


async def _latest(procs: list[ServeProcess], tenant_id: str) -> dict[str, Any] | None:
    r = await _call(procs, "GET", f"/api/v1/tenants/{tenant_id}/operations")
    ops = r.json()
    return ops[0] if ops else None


async def _run_one(
    procs: list[ServeProcess], tenant: dict[str, Any], method: str, what: str, body: Any
) -> dict[str, Any]:
    base = f"/api/v1/tenants/{tenant['id']}"
    before = await _latest(procs, tenant["id"])
    path = f"{base}/{what}"
    if what == "move-other":
        nodes = (await _call(procs, "GET", "/api/v1/nodes")).json()["items"]
        current = (await _call(procs, "GET", base)).json()["node_id"]
        path, body = f"{base}/move", {"node_id": next(n["id"] for n in nodes if n["id"] != current)}
    if what in ("restore-latest", "backups-oldest"):
        backups = (await _call(procs, "GET", f"{base}/backups")).json()
        ready = sorted(
            (b for b in backups if b["status"] == "ready"), key=lambda b: b["created_at"]
        )
        chosen = ready[-1] if what == "restore-latest" else ready[0]
        path = f"{base}/backups/{chosen['id']}" + ("/restore" if what == "restore-latest" else "")
    for _ in range(200):
        r = await _call(procs, method, path, body)
        if r.status_code == 202:
            op = r.json()
            break
        # An earlier attempt committed but its answer was lost: it is the latest operation.
        latest = await _latest(procs, tenant["id"])
        if latest is not None and (before is None or latest["id"] != before["id"]):
            op = latest
            break
        assert r.status_code in (409, 503), (path, r.status_code, r.text)
        await asyncio.sleep(0.2)
    else:
        raise AssertionError(f"{path}: never started")
    for _ in range(1200):
        done = (await _call(procs, "GET", f"/api/v1/operations/{op['id']}")).json()
        if done["status"] in ("succeeded", "failed"):
            return done
        await asyncio.sleep(0.1)
    raise AssertionError(f"operation {op['id']} never finished")


async def run_operations_chaos(
    admin: Any, app: Any, pve_sim: SimHandle, settings: Any, *, tenants: int, kills: int, seed: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    sim: Any = pve_sim.sim
    sim.durations.update(
        {
            "vzclone": 0.1,
            "vzstart": 0.05,
            "vzstop": 0.03,
            "vzdestroy": 0.03,
            "vzsnapshot": 0.15,
            "vzdelsnapshot": 0.1,
            "vzrollback": 0.15,
            "vzdump": 0.3,
            "vzrestore": 0.3,
            "resize": 0.1,
            "vzreboot": 0.1,
            "imgdel": 0.05,
            "vzmigrate": 0.2,
        }
    )
    templates = []
    for name in ("pve1", "pve2"):  # two nodes: the script moves each tenant once
        r = await admin.post("/api/v1/nodes", json=pve_sim.node_body(name, total_ram_mb=1_000_000))
        assert r.status_code == 201, r.text
        templates.append(r.json()["templates"][0])
    template = templates[0]
    r = await admin.post(
        "/api/v1/projects",
        json={"name": "Web", "slug": "web", "template_vmid": template, "ram_mb": 256},
    )
    project_id = r.json()["id"]
    procs = [ServeProcess(settings.database_url), ServeProcess(settings.database_url)]
    for p in procs:
        p.start()
    await asyncio.gather(*(p.wait_healthy() for p in procs))
    started = time.monotonic()
    results: list[dict[str, Any]] = []
    try:
        await create_tenants(procs, project_id, tenants, "ops")
        await wait_converged(app.state.cp.db, timeout=60 + tenants)
        rows = (await _call(procs, "GET", "/api/v1/tenants", None)).json()["items"]

        async def drive(tenant: dict[str, Any]) -> None:
            for method, what, body in script(tenant):
                results.append(await _run_one(procs, tenant, method, what, body))

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
    snapshot_rows = {
        (r["vmid"], r["name"]): r["status"]
        for r in await db.fetch_all(
            "SELECT t.vmid, s.name, s.status FROM snapshots s JOIN tenants t ON t.id = s.tenant_id"
        )
    }
    on_proxmox = {
        (vmid, name)
        for vmid, ct in sim.containers.items()
        if not ct.is_template
        for name in ct.snapshots
    }
    backup_rows = {
        r["volid"]: r["status"] for r in await db.fetch_all("SELECT volid, status FROM backups")
    }
    volumes = {b.volid for b in sim.backups.values()}
    outcome.update(
        kills=kills,
        seconds=round(elapsed, 1),
        operations=len(results),
        operations_failed=[(r["kind"], r["error"]) for r in results if r["status"] != "succeeded"],
        snapshots_without_row=sorted(on_proxmox - set(snapshot_rows)),
        snapshot_rows_without_snapshot=sorted(
            k for k, status in snapshot_rows.items() if status == "ready" and k not in on_proxmox
        ),
        volumes_without_row=sorted(volumes - set(backup_rows)),
        backup_rows_without_volume=sorted(
            v for v, status in backup_rows.items() if status == "ready" and v not in volumes
        ),
        rows_half_way=await db.fetch_val(
            "SELECT (SELECT count(*) FROM snapshots WHERE status IN ('creating', 'deleting'))"
            " + (SELECT count(*) FROM backups WHERE status IN ('creating', 'deleting'))"
            " + (SELECT count(*) FROM operations WHERE status IN ('queued', 'running'))"
            " + (SELECT count(*) FROM tenants WHERE operation_id IS NOT NULL)"
        ),
    )
    print("\noperations chaos outcome:", json.dumps(outcome, default=str))
    return outcome


def check(outcome: dict[str, Any], tenants: int) -> None:
    assert outcome["by_status"] == {"active": tenants}, outcome
    assert outcome["operations"] == tenants * 11
    assert outcome["operations_failed"] == []
    assert outcome["containers_without_live_tenant"] == 0
    assert outcome["live_tenants_without_container"] == 0
    assert outcome["ledger_mismatches"] == []
    assert outcome["snapshots_without_row"] == []
    assert outcome["snapshot_rows_without_snapshot"] == []
    assert outcome["volumes_without_row"] == []
    assert outcome["backup_rows_without_volume"] == []
    assert outcome["rows_half_way"] == 0


async def test_operations_chaos_small(admin, app, pve_sim, settings) -> None:  # type: ignore[no-untyped-def]
    outcome = await run_operations_chaos(admin, app, pve_sim, settings, tenants=3, kills=4, seed=11)
    check(outcome, 3)


@pytest.mark.slow
async def test_operations_chaos_full(admin, app, pve_sim, settings) -> None:  # type: ignore[no-untyped-def]
    outcome = await run_operations_chaos(
        admin, app, pve_sim, settings, tenants=12, kills=20, seed=12
    )
    check(outcome, 12)
