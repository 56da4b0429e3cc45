"""Snapshots: take, list, roll back, delete, and what is refused."""

from __future__ import annotations

from tests.operations.conftest import Life


async def test_snapshot_roundtrip(life: Life) -> None:
    tenant = await life.active_tenant()
    base = f"/api/v1/tenants/{tenant['id']}"
    op = await life.run(
        "POST", f"{base}/snapshots", json={"name": "before_upgrade", "description": "v1"}
    )
    assert op["status"] == "succeeded", op
    assert op["kind"] == "snapshot_create" and op["upids"]["snapshot"].startswith("UPID:")
    ct = life.container(tenant["vmid"])
    assert "before_upgrade" in ct.snapshots
    r = await life.admin.get(f"{base}/snapshots")
    assert [(s["name"], s["status"]) for s in r.json()] == [("before_upgrade", "ready")]

    ct.config["memory"] = 4096  # a change after the snapshot
    op = await life.run("POST", f"{base}/snapshots/before_upgrade/rollback")
    assert op["status"] == "succeeded", op
    assert life.container(tenant["vmid"]).config["memory"] != 4096
    assert life.container(tenant["vmid"]).status == "running"  # active: started again

    op = await life.run("DELETE", f"{base}/snapshots/before_upgrade")
    assert op["status"] == "succeeded", op
    assert "before_upgrade" not in life.container(tenant["vmid"]).snapshots
    assert (await life.admin.get(f"{base}/snapshots")).json() == []
    t = await life.plane.tenant(tenant["id"])
    assert t["operation"] is None and t["status"] == "active"
