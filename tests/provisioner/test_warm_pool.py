"""The warm pool: spares built in the background, taken by a create in its placement, retired
when they can no longer be taken, never lost or taken twice when a refiller dies."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from controlplane.provisioner.orphans import find_orphans
from controlplane.provisioner.worker import Worker
from controlplane.warmpool.refiller import Refiller
from tests.provisioner.conftest import Plane


def refiller(plane: Plane, *, owner: str | None = None, lease: float = 5.0) -> Refiller:
    ctx = plane.worker.ctx
    if owner is not None:
        from dataclasses import replace

        ctx = replace(ctx, owner=owner)
    return Refiller(ctx, concurrency=2, lease_seconds=lease, interval=0.05)


async def set_pool(plane: Plane, size: int, **more: Any) -> None:
    r = await plane.admin.put(
        f"/api/v1/projects/{plane.project['id']}", json={"warm_pool_size": size, **more}
    )
    assert r.status_code == 200, r.text
    assert r.json()["warm_pool_size"] == size


async def spares(plane: Plane) -> list[dict[str, Any]]:
    return await plane.db.fetch_all("SELECT * FROM spares ORDER BY vmid")


async def check_books(plane: Plane) -> None:
    """Every spare row has its container (tagged, stopped, marked), no container is neither a
    live tenant's nor a spare's, no VMID is both, and the RAM ledger is exact."""
    rows = await spares(plane)
    containers = plane.sim_containers()
    for s in rows:
        ct = containers.get(s["vmid"])
        if s["status"] == "ready":
            assert ct is not None and not ct.running, s
            assert "cp-spare" in ct.config["tags"] and str(s["id"]) in ct.config["description"]
    live = await plane.db.fetch_all(
        "SELECT vmid FROM tenants WHERE status <> 'deleted' AND vmid IS NOT NULL"
    )
    tenant_vmids = {r["vmid"] for r in live}
    spare_vmids = {s["vmid"] for s in rows}
    assert not tenant_vmids & spare_vmids
    assert set(containers) <= tenant_vmids | spare_vmids
    assert await plane.ledger_exact()


async def test_refill_and_take_skips_the_clone(plane: Plane) -> None:
    await set_pool(plane, 2)
    await refiller(plane).run_until_idle(timeout=30)
    rows = await spares(plane)
    # Only pve1 holds template 9000: two spares there, ready, stopped, tagged as spares.
    assert [s["status"] for s in rows] == ["ready", "ready"]
    assert {s["node_id"] for s in rows} == {uuid.UUID(plane.nodes[0]["id"])}
    await check_books(plane)
    # Spares are neither tenants nor orphans, and reserve no RAM.
    assert (await plane.admin.get("/api/v1/tenants")).json()["total"] == 0
    scan = await find_orphans(plane.db, plane.app.state.cp.proxmox)
    assert scan.items == []
    nodes = (await plane.admin.get("/api/v1/nodes")).json()["items"]
    assert all(n["allocated_ram_mb"] == 0 for n in nodes)

    clones_before = sum(1 for t in plane.sim.sim.tasks.values() if t.type == "vzclone")  # type: ignore[attr-defined]
    t = await plane.create("warm")
    row = await plane.db.fetch_one("SELECT * FROM tenants WHERE id = %(id)s", {"id": t["id"]})
    assert row is not None
    taken = next(s for s in rows if s["id"] == row["spare_id"])
    assert row["step"] == "configure" and row["vmid"] == taken["vmid"]
    assert [s["id"] for s in await spares(plane)] == [s["id"] for s in rows if s is not taken]
    await plane.worker.run_until_idle(timeout=30)
    got = await plane.tenant(t["id"])
    assert got["status"] == "active", got
    ct = plane.sim_containers()[got["vmid"]]
    assert ct.running and ct.hostname == "warm"
    assert str(t["id"]) in ct.config["description"] and "spare" not in ct.config["description"]
    assert ct.config["tags"] == "controlplane" and ct.config["memory"] == 512
    clones_after = sum(1 for t in plane.sim.sim.tasks.values() if t.type == "vzclone")  # type: ignore[attr-defined]
    assert clones_after == clones_before, "the tenant was not cloned"
    await check_books(plane)
    # The pool refills behind it.
    await refiller(plane).run_until_idle(timeout=30)
    assert [s["status"] for s in await spares(plane)] == ["ready", "ready"]
    await check_books(plane)


async def test_no_spare_means_a_clone_as_before(plane: Plane) -> None:
    t = await plane.create("cold")
    row = await plane.db.fetch_one("SELECT step, spare_id FROM tenants WHERE id = %(id)s",
                                   {"id": t["id"]})  # fmt: skip
    assert row == {"step": "clone", "spare_id": None}
    await plane.worker.run_until_idle(timeout=30)
    assert (await plane.tenant(t["id"]))["status"] == "active"


async def test_two_creates_one_spare(plane: Plane) -> None:
    await set_pool(plane, 1)
    await refiller(plane).run_until_idle(timeout=30)
    await set_pool(plane, 0)  # no refill between the two creates
    a, b = await asyncio.gather(plane.create("a1"), plane.create("b1"))
    took = await plane.db.fetch_all("SELECT spare_id FROM tenants WHERE spare_id IS NOT NULL")
    assert len(took) == 1
    await plane.worker.run_until_idle(timeout=30)
    for t in (a, b):
        assert (await plane.tenant(t["id"]))["status"] == "active"
    assert await spares(plane) == []
    await check_books(plane)


async def test_template_change_and_smaller_pool_retire_spares(plane: Plane) -> None:
    await set_pool(plane, 2)
    await refiller(plane).run_until_idle(timeout=30)
    old = {s["vmid"] for s in await spares(plane)}
    assert len(old) == 2
    await set_pool(plane, 1)
    await refiller(plane).run_until_idle(timeout=30)
    rows = await spares(plane)
    assert len(rows) == 1 and rows[0]["vmid"] in old
    assert len(set(plane.sim_containers()) & old) == 1
    # pve2 holds template 9001: the old spare goes, a new one is built there.
    await set_pool(plane, 1, template_vmid=9001)
    await refiller(plane).run_until_idle(timeout=30)
    rows = await spares(plane)
    assert len(rows) == 1 and rows[0]["template_vmid"] == 9001
    assert rows[0]["node_id"] == uuid.UUID(plane.nodes[1]["id"])
    assert {ct.node for ct in plane.sim_containers().values()} == {"pve2"}
    await check_books(plane)


async def test_a_deleted_project_leaves_no_spare(plane: Plane) -> None:
    await set_pool(plane, 1)
    await refiller(plane).run_until_idle(timeout=30)
    assert (await plane.admin.delete(f"/api/v1/projects/{plane.project['id']}")).status_code == 204
    await refiller(plane).run_until_idle(timeout=30)
    assert await spares(plane) == []
    assert plane.sim_containers() == {}


async def test_maintenance_and_drain_stop_refills(plane: Plane) -> None:
    pve1 = plane.nodes[0]["id"]
    r = await plane.admin.post(
        f"/api/v1/nodes/{pve1}/maintenance", json={"enabled": True, "reason": "kernel"}
    )
    assert r.status_code == 200, r.text
    await set_pool(plane, 2)
    await refiller(plane).run_until_idle(timeout=10)
    assert await spares(plane) == []
    r = await plane.admin.post(f"/api/v1/nodes/{pve1}/maintenance", json={"enabled": False})
    assert r.status_code == 200, r.text
    await refiller(plane).run_until_idle(timeout=30)
    assert len(await spares(plane)) == 2


async def test_a_killed_refillers_spares_are_resumed(plane: Plane) -> None:
    """A refiller that died after choosing a VMID, and one that died after its clone: the
    next one finishes both (their leases ran out), cloning once each."""
    await set_pool(plane, 2)
    pve1 = plane.nodes[0]
    dead = "dead-host:1:x"
    for _ in range(2):
        row = await plane.db.fetch_one(
            "SELECT * FROM spare_add(%(id)s, %(p)s, %(n)s, %(o)s, 0, '{}')",
            {"id": uuid.uuid4(), "p": plane.project["id"], "n": pve1["id"], "o": dead},
        )
        assert row is not None
    first, second = await spares(plane)
    # The second one's clone had started (it carries the spare's marker).
    client = plane.app.state.cp.proxmox.client(
        await plane.db.fetch_one("SELECT * FROM nodes WHERE id = %(id)s", {"id": pve1["id"]})
    )
    upid = await client.clone(
        "pve1", 9000, second["vmid"], hostname="x", description=f"controlplane spare {second['id']}"
    )
    await client.wait_task(upid, timeout=10)
    clones = sum(1 for t in plane.sim.sim.tasks.values() if t.type == "vzclone")  # type: ignore[attr-defined]
    await refiller(plane).run_until_idle(timeout=30)
    rows = await spares(plane)
    assert {s["id"] for s in rows} == {first["id"], second["id"]}
    assert all(s["status"] == "ready" for s in rows)
    assert sum(1 for t in plane.sim.sim.tasks.values() if t.type == "vzclone") == clones + 1  # type: ignore[attr-defined]
    await check_books(plane)


async def test_a_taken_spare_survives_a_killed_worker(plane: Plane) -> None:
    """A tenant that took a spare is resumed from configure by another worker; deleted
    before its configure ran, its (still spare-marked) container is destroyed with it."""
    await set_pool(plane, 2)
    await refiller(plane).run_until_idle(timeout=30)
    await set_pool(plane, 0)
    a = await plane.create("resumed")
    b = await plane.create("gone")
    # A worker claimed them and died (its lease runs out at once).
    await plane.db.execute(
        "UPDATE tenants SET lease_owner = 'dead', lease_expires_at = now() - interval '1 s'"
    )
    assert (await plane.admin.delete(f"/api/v1/tenants/{b['id']}")).status_code == 202
    other = Worker(plane.worker.ctx, lease_seconds=5, poll_interval=0.05)
    await other.run_until_idle(timeout=30)
    assert (await plane.tenant(a["id"]))["status"] == "active"
    assert (await plane.tenant(b["id"]))["status"] == "deleted"
    assert len(plane.sim_containers()) == 1
    await check_books(plane)


async def test_a_spare_removed_behind_our_back_is_cloned_instead(plane: Plane) -> None:
    await set_pool(plane, 1)
    await refiller(plane).run_until_idle(timeout=30)
    await set_pool(plane, 0)
    t = await plane.create("fallback")
    vmid = (await plane.tenant(t["id"]))["vmid"]
    del plane.sim.sim.containers[vmid]  # type: ignore[attr-defined]
    await plane.worker.run_until_idle(timeout=30)
    got = await plane.tenant(t["id"])
    assert got["status"] == "active", got
    ct = plane.sim_containers()[got["vmid"]]
    assert ct.running and str(t["id"]) in ct.config["description"]
    await check_books(plane)
