"""Moves (restart migration) and node drains."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from controlplane.operations.drains import DrainRunner
from tests.operations.conftest import Life


def _anonymous(life: Life) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=life.plane.app), base_url="http://testserver"
    )


def other_node(life: Life, tenant: dict[str, Any]) -> dict[str, Any]:
    return next(n for n in life.plane.nodes if n["id"] != tenant["node_id"])


async def test_move_to_another_node(life: Life) -> None:
    tenant = await life.active_tenant()
    target = other_node(life, tenant)
    op = await life.run(
        "POST", f"/api/v1/tenants/{tenant['id']}/move", json={"node_id": target["id"]}
    )
    assert op["status"] == "succeeded", op
    assert op["method"] == "migrate" and op["params"]["plan"]["method"] == "migrate"
    assert op["upids"]["migrate"].split(":")[5] == "vzmigrate"
    assert set(op["upids"]) == {"migrate"}  # none of backup and restore's tasks
    assert op["downtime_s"] > 0 and op["downtime_s"] == op["state"]["downtime_s"]
    assert op["state"]["health"] == "ok"
    ct = life.container(tenant["vmid"])
    assert ct.node == target["pve_node"] and ct.status == "running"
    t = await life.plane.tenant(tenant["id"])
    assert (t["node_id"], t["vmid"], t["ip_address"], t["status"]) == (
        target["id"],
        tenant["vmid"],
        tenant["ip_address"],
        "active",
    )
    assert await life.plane.ledger_exact()


async def test_move_refusals(life: Life) -> None:
    tenant = await life.active_tenant()
    url = f"/api/v1/tenants/{tenant['id']}/move"
    r = await life.admin.post(url, json={"node_id": tenant["node_id"]})
    assert r.status_code == 409 and r.json()["error"]["fields"][0]["field"] == "node_id"
    r = await life.admin.post(url, json={"node_id": str(uuid.uuid4())})
    assert r.status_code == 404 and r.json()["error"]["fields"][0]["field"] == "node_id"
    r = await life.admin.post(url, json={"node_id": "nope"})
    assert r.status_code == 422
    r = await life.admin.post(url, json={"node_id": tenant["node_id"], "method": "teleport"})
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "method"
    async with _anonymous(life) as anonymous:
        r = await anonymous.post(url, json={"node_id": tenant["node_id"]})
    assert r.status_code == 401
    target = other_node(life, tenant)
    await life.db.execute(
        "UPDATE nodes SET status = 'offline', polled_at = now() + interval '1 hour' WHERE id = %(id)s",
        {"id": target["id"]},
    )
    r = await life.admin.post(url, json={"node_id": target["id"]})
    assert r.status_code == 409 and "offline" in r.json()["error"]["message"]
    await life.db.execute(
        "UPDATE nodes SET status = 'online', allocated_ram_mb = total_ram_mb * 10 WHERE id = %(id)s",
        {"id": target["id"]},
    )
    r = await life.admin.post(url, json={"node_id": target["id"]})
    assert r.status_code == 409 and "no room" in r.json()["error"]["message"]
    assert (await life.plane.tenant(tenant["id"]))["operation"] is None


async def test_move_blocked_by_local_snapshots_is_refused_up_front(life: Life) -> None:
    """Local snapshots: Proxmox cannot migrate the disk, and backup and restore would lose
    them, so the request says so (409 naming `method`) before anything moves; asked for
    backup_restore, it needs a storage for backups both nodes share (none here: 409)."""
    tenant = await life.active_tenant()
    base = f"/api/v1/tenants/{tenant['id']}"
    await life.run("POST", f"{base}/snapshots", json={"name": "keep"})
    target = other_node(life, tenant)
    for method in ("auto", "migrate"):
        r = await life.admin.post(f"{base}/move", json={"node_id": target["id"], "method": method})
        assert r.status_code == 409, r.text
        assert r.json()["error"]["fields"][0]["field"] == "method"
        assert "snapshot" in r.json()["error"]["message"]
    r = await life.admin.post(
        f"{base}/move", json={"node_id": target["id"], "method": "backup_restore"}
    )
    assert r.status_code == 409 and r.json()["error"]["fields"][0]["field"] == "node_id"
    assert "no storage for backups is shared" in r.json()["error"]["message"]
    t = await life.plane.tenant(tenant["id"])
    assert t["node_id"] == tenant["node_id"] and t["operation"] is None
    assert life.container(tenant["vmid"]).node != target["pve_node"]
    assert await life.plane.ledger_exact()  # nothing was reserved


async def test_move_that_proxmox_refuses_fails_cleanly(life: Life) -> None:
    """A drain's move has no request to refuse: its first step plans, and a refusal fails
    the operation with the reason; the tenant stays, the reservation is given back."""
    tenant = await life.active_tenant()
    await life.run("POST", f"/api/v1/tenants/{tenant['id']}/snapshots", json={"name": "keep"})
    target = other_node(life, tenant)
    state = life.plane.app.state.cp
    from controlplane.audit.context import AuditContext
    from controlplane.operations import usecases

    op = await usecases.move(
        state.db, state.settings, AuditContext(log=state.audit, actor="test"), tenant["id"],
        target["id"],
    )  # fmt: skip
    await life.settle()
    op = await life.operation(str(op["id"]))
    assert op["status"] == "failed" and op["step"] == "plan" and "snapshot" in op["error"]
    t = await life.plane.tenant(tenant["id"])
    assert t["node_id"] == tenant["node_id"] and t["status"] == "active"
    assert life.container(tenant["vmid"]).status == "running"
    assert await life.plane.ledger_exact()


async def test_drain_moves_every_tenant_off(life: Life) -> None:
    tenants = [await life.active_tenant(f"t{i}") for i in range(3)]
    node_id = tenants[0]["node_id"]
    for t in tenants[1:]:
        if t["node_id"] != node_id:  # placement spread them: bring them together first
            await life.run("POST", f"/api/v1/tenants/{t['id']}/move", json={"node_id": node_id})
    target = next(n for n in life.plane.nodes if n["id"] != node_id)
    r = await life.admin.post(f"/api/v1/nodes/{node_id}/drain", json={"max_parallel": 2})
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "running" and r.json()["remaining"] == 3
    r = await life.admin.post(f"/api/v1/nodes/{node_id}/drain", json={})
    assert r.status_code == 409  # one drain at a time
    # Placement skips the node while it is drained: with the template on the drained node
    # only, a new tenant would have landed there, and is refused instead.
    await life.db.execute(
        "UPDATE nodes SET templates = CASE WHEN id = %(node)s THEN '{9000}'::int[]"
        " ELSE '{}'::int[] END",
        {"node": node_id},
    )
    r = await life.admin.post(
        "/api/v1/tenants", json={"project_id": life.plane.project["id"], "subdomain": "new"}
    )
    assert r.status_code == 409 and "no room" in r.json()["error"]["message"], r.text
    state = life.plane.app.state.cp
    runner = DrainRunner(state.db, state.settings, state.audit)
    assert await runner.round() == 2  # bounded
    for _ in range(10):
        await life.settle()
        await runner.round()
        status = (await life.admin.get(f"/api/v1/nodes/{node_id}/drain")).json()
        if status["status"] == "done":
            break
    assert status["status"] == "done" and status["moved"] == 3 and status["remaining"] == 0
    for t in tenants:
        assert (await life.plane.tenant(t["id"]))["node_id"] == target["id"]
    assert await life.plane.ledger_exact()
    r = await life.admin.post(f"/api/v1/nodes/{node_id}/drain/cancel")
    assert r.status_code == 409  # done, not running


async def test_cancel_a_drain(life: Life) -> None:
    tenant = await life.active_tenant()
    node_id = tenant["node_id"]
    assert (await life.admin.post(f"/api/v1/nodes/{node_id}/drain", json={})).status_code == 202
    r = await life.admin.post(f"/api/v1/nodes/{node_id}/drain/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    state = life.plane.app.state.cp
    assert await DrainRunner(state.db, state.settings, state.audit).round() == 0
    assert (await life.plane.tenant(tenant["id"]))["node_id"] == node_id
    assert (await life.admin.get(f"/api/v1/nodes/{uuid.uuid4()}/drain")).status_code == 404
    assert (
        await life.admin.post(f"/api/v1/nodes/{uuid.uuid4()}/drain", json={})
    ).status_code == 404
    r = await life.admin.post(f"/api/v1/nodes/{node_id}/drain", json={"max_parallel": 0})
    assert r.status_code == 422


async def test_rebuild_refused_on_a_node_without_the_template(life: Life) -> None:
    tenant = await life.active_tenant()
    target = other_node(life, tenant)
    await life.db.execute(
        "UPDATE nodes SET templates = '{}' WHERE id = %(id)s", {"id": target["id"]}
    )
    op = await life.run(
        "POST", f"/api/v1/tenants/{tenant['id']}/move", json={"node_id": target["id"]}
    )
    assert op["status"] == "succeeded", op
    r = await life.admin.post(
        f"/api/v1/tenants/{tenant['id']}/rebuild", json={"confirm": tenant["subdomain"]}
    )
    assert r.status_code == 409 and "does not hold template" in r.json()["error"]["message"]
    assert life.container(tenant["vmid"]).status == "running"  # untouched
