"""Backups: vzdump with our notes, restore over the tenant's own container, delete."""

from __future__ import annotations

from tests.operations.conftest import Life


async def test_backup_restore_delete(life: Life) -> None:
    tenant = await life.active_tenant()
    base = f"/api/v1/tenants/{tenant['id']}"
    op = await life.run("POST", f"{base}/backups")
    assert op["status"] == "succeeded", op
    backups = (await life.admin.get(f"{base}/backups")).json()
    assert len(backups) == 1 and backups[0]["status"] == "ready"
    backup = backups[0]
    assert backup["volid"].startswith(f"local:backup/vzdump-lxc-{tenant['vmid']}-")
    volume = next(b for b in life.sim.backups.values() if b.volid == backup["volid"])
    assert f"controlplane backup {backup['id']}" in (volume.notes or "")
    assert backup["size_bytes"] and backup["size_bytes"] > 0

    # Something changes after the backup; the restore brings the old state back.
    life.container(tenant["vmid"]).config["memory"] = 4096
    op = await life.run(
        "POST", f"{base}/backups/{backup['id']}/restore", json={"confirm": tenant["subdomain"]}
    )
    assert op["status"] == "succeeded", op
    ct = life.container(tenant["vmid"])
    assert ct.config["memory"] == tenant["ram_mb"]  # configured as the tenant's again
    assert ct.status == "running"
    t = await life.plane.tenant(tenant["id"])
    assert (t["status"], t["vmid"], t["subdomain"], t["ip_address"]) == (
        "active",
        tenant["vmid"],
        tenant["subdomain"],
        tenant["ip_address"],
    )

    op = await life.run("DELETE", f"{base}/backups/{backup['id']}")
    assert op["status"] == "succeeded", op
    assert (await life.admin.get(f"{base}/backups")).json() == []
    assert not [b for b in life.sim.backups.values() if b.volid == backup["volid"]]


async def test_restore_needs_confirmation(life: Life) -> None:
    tenant = await life.active_tenant()
    base = f"/api/v1/tenants/{tenant['id']}"
    await life.run("POST", f"{base}/backups")
    backup = (await life.admin.get(f"{base}/backups")).json()[0]
    r = await life.admin.post(f"{base}/backups/{backup['id']}/restore", json={"confirm": "nope"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["fields"][0]["field"] == "confirm"
    r = await life.admin.post(f"{base}/backups/{backup['id']}/restore", json={})
    assert r.status_code == 422
    # Nothing was started: the tenant is free.
    assert (await life.plane.tenant(tenant["id"]))["operation"] is None


async def test_backup_to_storage_without_backup_content_fails_cleanly(life: Life) -> None:
    tenant = await life.active_tenant()
    r = await life.admin.put(
        f"/api/v1/projects/{life.plane.project['id']}", json={"backup_storage": "local-lvm"}
    )
    assert r.status_code == 200, r.text
    op = await life.run("POST", f"/api/v1/tenants/{tenant['id']}/backups")
    assert op["status"] == "failed"
    assert "wrong content type" in op["error"] or "backup" in op["error"]
    backups = (await life.admin.get(f"/api/v1/tenants/{tenant['id']}/backups")).json()
    assert [b["status"] for b in backups] == ["error"]
    # The failed backup can be deleted (nothing on Proxmox to remove).
    op = await life.run("DELETE", f"/api/v1/tenants/{tenant['id']}/backups/{backups[0]['id']}")
    assert op["status"] == "succeeded", op
    t = await life.plane.tenant(tenant["id"])
    assert t["status"] == "active" and t["operation"] is None
