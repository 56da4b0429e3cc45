"""Rebuild from the template, resize (RAM re-reserved, disk grow-only), restart."""

from __future__ import annotations

from tests.operations.conftest import Life


async def test_rebuild_keeps_identity(life: Life) -> None:
    tenant = await life.active_tenant()
    base = f"/api/v1/tenants/{tenant['id']}"
    await life.run("POST", f"{base}/snapshots", json={"name": "old"})
    life.container(tenant["vmid"]).config["memory"] = 4096
    op = await life.run("POST", f"{base}/rebuild", json={"confirm": tenant["subdomain"]})
    assert op["status"] == "succeeded", op
    ct = life.container(tenant["vmid"])
    assert ct.config["memory"] == tenant["ram_mb"] and ct.status == "running"
    assert not ct.snapshots  # a new container
    assert f"controlplane tenant {tenant['id']}" in ct.config["description"]
    t = await life.plane.tenant(tenant["id"])
    assert (t["vmid"], t["subdomain"], t["ip_address"], t["owner_user_id"]) == (
        tenant["vmid"],
        tenant["subdomain"],
        tenant["ip_address"],
        tenant["owner_user_id"],
    )
    assert (await life.admin.get(f"{base}/snapshots")).json() == []
    r = await life.admin.post(f"{base}/rebuild", json={"confirm": "other"})
    assert r.status_code == 422


async def test_resize_reserves_ram_and_grows_disk(life: Life) -> None:
    tenant = await life.active_tenant()
    base = f"/api/v1/tenants/{tenant['id']}"
    t = await life.plane.tenant(tenant["id"])
    disk = t["disk_gb"]
    assert disk is not None
    op = await life.run(
        "POST", f"{base}/resize", json={"ram_mb": 1024, "cores": 2, "disk_gb": disk + 2}
    )
    assert op["status"] == "succeeded", op
    ct = life.container(tenant["vmid"])
    assert (ct.config["memory"], ct.config["cores"]) == (1024, 2)
    assert f"size={disk + 2}G" in ct.config["rootfs"]
    t = await life.plane.tenant(tenant["id"])
    assert (t["ram_mb"], t["cores"], t["disk_gb"]) == (1024, 2, disk + 2)
    assert await life.plane.ledger_exact()

    r = await life.admin.post(f"{base}/resize", json={"disk_gb": disk})
    assert r.status_code == 409 and "shrink" in r.json()["error"]["message"]
    r = await life.admin.post(f"{base}/resize", json={})
    assert r.status_code == 422
    r = await life.admin.post(f"{base}/resize", json={"ram_mb": 10_000_000})
    assert r.status_code == 422
    r = await life.admin.post(f"{base}/resize", json={"ram_mb": 1_000_000})
    assert r.status_code == 409  # the node has no room
    assert await life.plane.ledger_exact()
    assert (await life.plane.tenant(tenant["id"]))["operation"] is None


async def test_restart_reboots(life: Life) -> None:
    tenant = await life.active_tenant()
    op = await life.run("POST", f"/api/v1/tenants/{tenant['id']}/restart")
    assert op["status"] == "succeeded", op
    assert op["upids"]["reboot"].split(":")[5] == "vzreboot"
    assert life.container(tenant["vmid"]).status == "running"


async def test_restart_refused_when_suspended(life: Life) -> None:
    tenant = await life.active_tenant()
    r = await life.admin.post(f"/api/v1/tenants/{tenant['id']}/suspend")
    assert r.status_code == 202
    await life.settle()
    r = await life.admin.post(f"/api/v1/tenants/{tenant['id']}/restart")
    assert r.status_code == 409
    assert "suspended" in r.json()["error"]["message"]
