"""Remediation: a container stopped or vanished behind our back comes back."""

from __future__ import annotations

import uuid

from tests.operations.conftest import Life


async def test_repair_starts_a_stopped_container(life: Life) -> None:
    tenant = await life.active_tenant()
    life.container(tenant["vmid"]).status = "stopped"
    op = await life.run("POST", f"/api/v1/tenants/{tenant['id']}/repair")
    assert op["status"] == "succeeded" and op["state"]["mode"] == "start", op
    assert life.container(tenant["vmid"]).status == "running"


async def test_repair_restores_a_vanished_container_from_its_backup(life: Life) -> None:
    tenant = await life.active_tenant()
    await life.run("POST", f"/api/v1/tenants/{tenant['id']}/backups")
    await life.run("POST", f"/api/v1/tenants/{tenant['id']}/snapshots", json={"name": "gone"})
    del life.sim.containers[tenant["vmid"]]
    op = await life.run("POST", f"/api/v1/tenants/{tenant['id']}/repair")
    assert op["status"] == "succeeded" and op["state"]["mode"] == "restore", op
    ct = life.container(tenant["vmid"])
    assert (
        ct.status == "running" and f"controlplane tenant {tenant['id']}" in ct.config["description"]
    )
    # The snapshots went with the old container.
    assert (await life.admin.get(f"/api/v1/tenants/{tenant['id']}/snapshots")).json() == []
    t = await life.plane.tenant(tenant["id"])
    assert (t["vmid"], t["ip_address"], t["status"]) == (
        tenant["vmid"],
        tenant["ip_address"],
        "active",
    )


async def test_repair_recreates_from_the_template_without_a_backup(life: Life) -> None:
    tenant = await life.active_tenant()
    del life.sim.containers[tenant["vmid"]]
    op = await life.run("POST", f"/api/v1/tenants/{tenant['id']}/repair")
    assert op["status"] == "succeeded" and op["state"]["mode"] == "recreate", op
    assert life.container(tenant["vmid"]).status == "running"
    assert await life.plane.ledger_exact()


async def test_repair_refusals(life: Life, client: object) -> None:
    tenant = await life.active_tenant()
    r = await client.post(f"/api/v1/tenants/{tenant['id']}/repair")  # type: ignore[attr-defined]
    assert r.status_code == 401
    assert (await life.admin.post(f"/api/v1/tenants/{uuid.uuid4()}/repair")).status_code == 404
    assert (await life.admin.post(f"/api/v1/tenants/{tenant['id']}/restart")).status_code == 202
    r = await life.admin.post(f"/api/v1/tenants/{tenant['id']}/repair")
    assert r.status_code == 409 and "in progress" in r.json()["error"]["message"]


async def test_policy_restart_repairs_without_being_asked(life: Life) -> None:
    from controlplane.operations.remediation import AutoRepair

    tenant = await life.active_tenant()
    state = life.plane.app.state.cp
    repairs = AutoRepair(state.db, state.settings, state.audit)
    await life.db.execute("UPDATE tenants SET health = 'container_stopped'")
    assert await repairs.round() == 0  # the default policy only flags
    r = await life.admin.put(
        f"/api/v1/projects/{life.plane.project['id']}", json={"on_container_stopped": "restart"}
    )
    assert r.status_code == 200 and r.json()["on_container_stopped"] == "restart"
    life.container(tenant["vmid"]).status = "stopped"
    assert await repairs.round() == 1
    await life.settle()
    assert life.container(tenant["vmid"]).status == "running"
    assert await repairs.round() == 0  # quiet after a repair, even if still flagged
    r = await life.admin.put(
        f"/api/v1/projects/{life.plane.project['id']}", json={"on_container_stopped": "reboot"}
    )
    assert r.status_code == 422
