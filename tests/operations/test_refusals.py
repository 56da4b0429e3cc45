"""What the lifecycle routes refuse: bad names, wrong states, a second operation."""

from __future__ import annotations

import uuid

import pytest

from tests.operations.conftest import Life


@pytest.mark.parametrize(
    "name", ["a", "1abc", "current", "vzdump", "has-dash", "x" * 41, "with space", "ok\n"]
)
async def test_bad_snapshot_names_are_422(life: Life, name: str) -> None:
    tenant = await life.active_tenant()
    r = await life.admin.post(f"/api/v1/tenants/{tenant['id']}/snapshots", json={"name": name})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["fields"][0]["field"] == "name"


async def test_one_operation_at_a_time(life: Life) -> None:
    tenant = await life.active_tenant()
    base = f"/api/v1/tenants/{tenant['id']}"
    r = await life.admin.post(f"{base}/snapshots", json={"name": "first"})
    assert r.status_code == 202
    first = r.json()
    t = await life.plane.tenant(tenant["id"])
    assert t["operation"] == {
        "id": first["id"],
        "kind": "snapshot_create",
        "status": "queued",
        "step": None,
    }
    assert t["status"] == "active"  # the lifecycle status stays; `operation` says what runs

    for method, path, body in (
        ("POST", f"{base}/snapshots", {"name": "second"}),
        ("POST", f"{base}/backups", None),
        ("POST", f"{base}/restart", None),
        ("POST", f"{base}/resize", {"cores": 2}),
    ):
        r = await life.admin.request(method, path, json=body)
        assert r.status_code == 409, (path, r.text)
        assert first["id"] in r.json()["error"]["message"]
    r = await life.admin.post(f"{base}/suspend")
    assert r.status_code == 409 and first["id"] in r.json()["error"]["message"]
    r = await life.admin.delete(base)
    assert r.status_code == 409
    r = await life.admin.put(base, json={"ram_mb": 1024})
    assert r.status_code == 409
    # The refused snapshot left no row behind.
    names = [s["name"] for s in (await life.admin.get(f"{base}/snapshots")).json()]
    assert names == ["first"]

    await life.settle()
    assert (await life.operation(first["id"]))["status"] == "succeeded"
    r = await life.admin.post(f"{base}/snapshots", json={"name": "first"})
    assert r.status_code == 409 and r.json()["error"]["fields"][0]["field"] == "name"
    assert (await life.plane.tenant(tenant["id"]))["operation"] is None  # rolled back whole


async def test_force_delete_cancels_the_operation(life: Life) -> None:
    tenant = await life.active_tenant()
    base = f"/api/v1/tenants/{tenant['id']}"
    op = (await life.admin.post(f"{base}/backups")).json()
    r = await life.admin.delete(base, params={"force": "true"})
    assert r.status_code == 202, r.text
    await life.settle()
    cancelled = await life.operation(op["id"])
    assert cancelled["status"] == "failed" and "force-deleted" in cancelled["error"]
    t = await life.plane.tenant(tenant["id"])
    assert t["status"] == "deleted"
    assert tenant["vmid"] not in life.plane.sim_containers()
    rows = await life.db.fetch_all("SELECT * FROM backups")
    assert rows == [] and not life.sim.backups  # nothing left on either side


async def test_unknown_things_are_404(life: Life) -> None:
    tenant = await life.active_tenant()
    base = f"/api/v1/tenants/{tenant['id']}"
    missing = uuid.uuid4()
    assert (await life.admin.delete(f"{base}/snapshots/nothere")).status_code == 404
    assert (await life.admin.post(f"{base}/snapshots/nothere/rollback")).status_code == 404
    assert (await life.admin.delete(f"{base}/backups/{missing}")).status_code == 404
    r = await life.admin.post(f"{base}/backups/{missing}/restore", json={"confirm": "shop"})
    assert r.status_code == 404
    assert (await life.admin.get(f"/api/v1/tenants/{missing}/snapshots")).status_code == 404
    assert (await life.admin.post(f"/api/v1/tenants/{missing}/restart")).status_code == 404
    assert (await life.admin.get(f"/api/v1/operations/{missing}")).status_code == 404
    assert (await life.admin.get("/api/v1/operations/not-a-uuid")).status_code == 422
    assert (await life.plane.tenant(tenant["id"]))["operation"] is None


async def test_admin_routes_need_the_token(life: Life, client: object) -> None:
    tenant = await life.active_tenant()
    r = await client.post(f"/api/v1/tenants/{tenant['id']}/snapshots", json={"name": "abc"})  # type: ignore[attr-defined]
    assert r.status_code == 401
    r = await client.get(f"/api/v1/tenants/{tenant['id']}/backups")  # type: ignore[attr-defined]
    assert r.status_code == 401


async def test_backup_of_another_node_cannot_be_restored_here(life: Life) -> None:
    tenant = await life.active_tenant()
    base = f"/api/v1/tenants/{tenant['id']}"
    await life.run("POST", f"{base}/backups")
    backup = (await life.admin.get(f"{base}/backups")).json()[0]
    other = next(n for n in life.plane.nodes if n["id"] != tenant["node_id"])
    await life.db.execute(
        "UPDATE backups SET node_id = %(n)s WHERE id = %(id)s",
        {"n": other["id"], "id": backup["id"]},
    )
    r = await life.admin.post(f"{base}/backups/{backup['id']}/restore", json={"confirm": "shop"})
    assert r.status_code == 409 and "another node" in r.json()["error"]["message"]
