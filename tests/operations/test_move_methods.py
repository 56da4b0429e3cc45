"""Moves that flip after a health check, by restart migration or by backup and restore.

The simulator runs each container's app on its own loopback address, so the health check
is a real HTTP request; a zfspool cluster makes tenants linked clones that Proxmox refuses
to migrate, and an NFS store shared by both nodes takes the archive.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from typing import Any

import pytest

from controlplane.config import Settings
from controlplane.operations.steps import STEPS
from controlplane.provisioner.context import LostLease, PermanentStep
from controlplane.pvesim.storage import Storage
from tests.conftest import SimHandle, make_settings, start_sim
from tests.operations.conftest import Life

# The simulator gives a container the same loopback address in every process and its app
# listens on the project's port (8080), so two of these modules running at once in
# pytest-xdist workers would answer each other's requests: one worker runs them all.
pytestmark = pytest.mark.xdist_group("simulated-apps-on-port-8080")

LOOPBACK_TENANTS = "127.100.0.0/16"
NFS = Storage("nfs", "nfs", frozenset({"backup"}), shared=True, path="/mnt/pve/nfs")
CLUSTERS: dict[str, dict[str, Any]] = {
    "lvmthin": {},
    "zfs": {"storage": "local-zfs", "storage_type": "zfspool", "extra_storages": [NFS]},
    "zfs-no-shared": {"storage": "local-zfs", "storage_type": "zfspool"},
}


@pytest.fixture
async def pve_sim(request: pytest.FixtureRequest) -> AsyncIterator[SimHandle]:
    kind = getattr(request, "param", "lvmthin")
    handle, server = await start_sim(loopback_ips=True, **CLUSTERS[kind])
    yield handle
    await server.close()  # type: ignore[attr-defined]
    await handle.sim.close()  # type: ignore[attr-defined]  # its guest apps' sockets too


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, tenant_networks=[LOOPBACK_TENANTS])


class Routes:
    """A route hook that records, at each upsert, where the container is and runs."""

    def __init__(self, life: Life) -> None:
        self.life = life
        self.upserts: list[dict[str, Any]] = []

    async def upsert_active(self, tenant_id: Any, subdomain: str, upstream: str) -> None:
        row = await self.life.db.fetch_one(
            "SELECT t.vmid, n.pve_node FROM tenants t JOIN nodes n ON n.id = t.node_id"
            " WHERE t.id = %(id)s",
            {"id": tenant_id},
        )
        assert row is not None
        ct = self.life.sim.containers.get(row["vmid"])
        self.upserts.append(
            {
                "upstream": upstream,
                "tenant_node": row["pve_node"],
                "container_node": ct.node if ct else None,
                "running": bool(ct and ct.status == "running"),
            }
        )

    async def set_suspended(self, tenant_id: Any, subdomain: str) -> None:
        return None

    async def remove(self, tenant_id: Any) -> None:
        return None


async def _setup(life: Life, *, health_path: str | None = "/") -> tuple[dict[str, Any], Routes]:
    await life.db.execute(
        "UPDATE projects SET health_path = %(path)s", {"path": health_path}
    )  # fmt: skip
    routes = Routes(life)
    life.ops.ctx.route_hook = routes  # the tenant worker shares this context
    tenant = await life.active_tenant()
    routes.upserts.clear()
    return tenant, routes


def _other(life: Life, tenant: dict[str, Any]) -> dict[str, Any]:
    return next(n for n in life.plane.nodes if n["id"] != tenant["node_id"])


async def _no_leftovers(life: Life, tenant: dict[str, Any], node: dict[str, Any]) -> None:
    ct = life.container(tenant["vmid"])
    assert ct.node == node["pve_node"]
    assert (await life.plane.tenant(tenant["id"]))["node_id"] == node["id"]
    assert not life.sim.backups  # no archive left on any storage
    rows = await life.db.fetch_val("SELECT count(*) FROM backups WHERE tenant_id = %(id)s",
                                   {"id": tenant["id"]})  # fmt: skip
    assert rows == 0
    assert await life.plane.ledger_exact()


async def test_migrate_flips_the_route_after_the_health_check(life: Life) -> None:
    tenant, routes = await _setup(life)
    target = _other(life, tenant)
    op = await life.run(
        "POST", f"/api/v1/tenants/{tenant['id']}/move", json={"node_id": target["id"]}
    )
    assert op["status"] == "succeeded", op
    assert op["method"] == "migrate" and op["state"]["health"] == "ok"
    assert op["downtime_s"] > 0
    # One flip, after the switch, to the container answering on the target.
    assert routes.upserts == [
        {
            "upstream": f"{tenant['ip_address']}:8080",
            "tenant_node": target["pve_node"],
            "container_node": target["pve_node"],
            "running": True,
        }
    ]
    assert life.container(tenant["vmid"]).status == "running"
    await _no_leftovers(life, tenant, target)


async def test_a_health_check_that_never_answers_fails_the_move_but_the_route_follows(
    life: Life,
) -> None:
    """The container is on the target whatever its app does: the tenant and its route go
    with it (one node, a correct route) and the operation fails saying why."""
    tenant, routes = await _setup(life, health_path="/healthz")
    await life.db.execute("UPDATE projects SET app_port = 8099")  # nothing listens there
    life.ops.ctx.move_health_wait_s = 0.3
    target = _other(life, tenant)
    op = await life.run(
        "POST", f"/api/v1/tenants/{tenant['id']}/move", json={"node_id": target["id"]}
    )
    assert op["status"] == "failed" and op["step"] == "verdict", op
    assert "not healthy on pve" in op["error"] and "/healthz did not answer" in op["error"]
    assert "moved and is routed there" in op["error"]
    assert op["method"] == "migrate" and op["downtime_s"] > 0
    assert [u["tenant_node"] for u in routes.upserts] == [target["pve_node"]]
    assert routes.upserts[0]["container_node"] == target["pve_node"]
    await _no_leftovers(life, tenant, target)


@pytest.mark.parametrize("pve_sim", ["zfs"], indirect=True)
async def test_backup_and_restore_where_the_disk_cannot_migrate(life: Life) -> None:
    tenant, routes = await _setup(life)
    source = next(n for n in life.plane.nodes if n["id"] == tenant["node_id"])
    assert "/subvol-" in life.container(tenant["vmid"]).config["rootfs"]  # a linked clone
    target = _other(life, tenant)
    url = f"/api/v1/tenants/{tenant['id']}/move"
    r = await life.admin.post(url, json={"node_id": target["id"], "method": "migrate"})
    assert r.status_code == 409 and "linked clone" in r.json()["error"]["message"], r.text
    op = await life.run("POST", url, json={"node_id": target["id"]})
    assert op["status"] == "succeeded", op
    assert op["method"] == "backup_restore" and op["state"]["health"] == "ok"
    assert op["state"]["backup_storage"] == "nfs" and op["state"]["target_storage"] == "local-zfs"
    assert {"vzdump", "restore", "delete_archive"} <= set(op["upids"])
    assert "migrate" not in op["upids"] and op["downtime_s"] > 0
    ct = life.container(tenant["vmid"])
    assert ct.status == "running" and ct.config["rootfs"].startswith("local-zfs:subvol-")
    assert routes.upserts[-1]["container_node"] == target["pve_node"]
    assert [u["tenant_node"] for u in routes.upserts] == [target["pve_node"]]
    t = await life.plane.tenant(tenant["id"])
    assert (t["vmid"], t["ip_address"], t["status"]) == (
        tenant["vmid"],
        tenant["ip_address"],
        "active",
    )
    await _no_leftovers(life, tenant, target)
    # A full copy now: the way back is a restart migration.
    back = await life.run("POST", url, json={"node_id": source["id"]})
    assert back["status"] == "succeeded" and back["method"] == "migrate", back
    await _no_leftovers(life, tenant, source)


@pytest.mark.parametrize("pve_sim", ["zfs"], indirect=True)
async def test_backup_and_restore_with_a_failing_health_check_stays_on_the_target(
    life: Life,
) -> None:
    tenant, routes = await _setup(life, health_path="/healthz")
    await life.db.execute("UPDATE projects SET app_port = 8099")
    life.ops.ctx.move_health_wait_s = 0.2
    target = _other(life, tenant)
    op = await life.run(
        "POST", f"/api/v1/tenants/{tenant['id']}/move", json={"node_id": target["id"]}
    )
    assert op["status"] == "failed" and op["method"] == "backup_restore", op
    assert "not healthy" in op["error"]
    assert [u["tenant_node"] for u in routes.upserts] == [target["pve_node"]]
    await _no_leftovers(life, tenant, target)


@pytest.mark.parametrize("pve_sim", ["zfs-no-shared"], indirect=True)
async def test_no_shared_backup_storage_is_refused_up_front(life: Life) -> None:
    tenant, _ = await _setup(life, health_path=None)
    target = _other(life, tenant)
    r = await life.admin.post(
        f"/api/v1/tenants/{tenant['id']}/move", json={"node_id": target["id"]}
    )
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert error["fields"][0]["field"] == "node_id"
    assert "no storage for backups is shared by nodes pve1 and pve2" in error["message"]
    assert "linked clone" in error["message"]
    t = await life.plane.tenant(tenant["id"])
    assert t["node_id"] == tenant["node_id"] and t["operation"] is None
    assert life.container(tenant["vmid"]).status == "running"
    assert await life.plane.ledger_exact()


def _replace_step(monkeypatch: pytest.MonkeyPatch, name: str, step: Any) -> Any:
    """Swap one of the move's steps; returns the original."""
    steps = STEPS["move"]
    original = dict(steps)[name]
    monkeypatch.setitem(STEPS, "move", [(n, step if n == name else f) for n, f in steps])
    return original


@pytest.mark.parametrize("pve_sim", ["zfs"], indirect=True)
async def test_backup_and_restore_that_fails_before_the_switch_is_undone(
    life: Life, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The restore on the target fails for good after the source was destroyed (it has to
    be: VMIDs are one per cluster): the undo restores the kept archive on the source and
    starts it; the tenant stays there, routed as before, the target's RAM given back."""
    tenant, routes = await _setup(life, health_path=None)
    target = _other(life, tenant)

    async def refused(run: Any) -> None:
        raise PermanentStep("the target refused the restore")

    _replace_step(monkeypatch, "restore", refused)
    op = await life.run(
        "POST", f"/api/v1/tenants/{tenant['id']}/move", json={"node_id": target["id"]}
    )
    assert op["status"] == "failed" and op["step"] == "restore", op
    assert "restore_source" in op["upids"] and "delete_archive" in op["upids"]
    source = next(n for n in life.plane.nodes if n["id"] == tenant["node_id"])
    assert life.container(tenant["vmid"]).status == "running"
    assert routes.upserts == []  # never flipped
    await _no_leftovers(life, tenant, source)


@pytest.mark.parametrize("pve_sim", ["lvmthin", "zfs"], indirect=True)
async def test_a_crash_at_any_step_resumes_to_one_node(
    life: Life, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that dies at the start of a step, or right after it did its work, leaves
    the operation at that step; the next attempt does it again (each step looks first),
    and the move ends with the tenant on one node, no archive, the ledger exact."""
    await _setup(life, health_path="/")
    zfs = "local-zfs" in life.sim.storages
    names = [name for name, _ in STEPS["move"]]
    tenant = await life.active_tenant("c")
    for i, (name, after) in enumerate((n, a) for n in names for a in (False, True)):
        if zfs and i > 0:  # a linked clone each time: every move is a backup and restore
            tenant = await life.active_tenant(f"c{i}")
        fired = False

        async def crash(run: Any, original: Any = None, after: bool = after) -> None:
            nonlocal fired
            if not fired and not after:
                fired = True
                raise LostLease("the worker died here")
            await original(run)
            if not fired:
                fired = True
                raise LostLease("the worker died here")

        with monkeypatch.context() as patch:
            original = _replace_step(patch, name, None)
            _replace_step(patch, name, functools.partial(crash, original=original))
            target = _other(life, await life.plane.tenant(tenant["id"]))
            op = await life.run(
                "POST", f"/api/v1/tenants/{tenant['id']}/move", json={"node_id": target["id"]}
            )
        assert fired, name
        assert op["status"] == "succeeded", (name, after, op)
        assert op["method"] == ("backup_restore" if zfs else "migrate"), (name, op)
        assert op["downtime_s"] > 0, (name, after, op)
        assert life.container(tenant["vmid"]).status == "running"
        await _no_leftovers(life, tenant, target)


async def test_a_force_delete_during_a_move_finds_the_container_on_the_target(
    life: Life, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Force-deleted after the migration and before the switch: the tenant's row still
    names the source, the container is on the target; the delete looks there too and
    leaves no orphan, and the target's reservation is given back."""
    tenant, _ = await _setup(life, health_path=None)
    target = _other(life, tenant)

    async def delete_now(run: Any) -> None:
        r = await life.admin.delete(f"/api/v1/tenants/{tenant['id']}", params={"force": "true"})
        assert r.status_code == 202, r.text
        raise LostLease("cancelled by the force delete")

    _replace_step(monkeypatch, "switch", delete_now)
    r = await life.admin.post(
        f"/api/v1/tenants/{tenant['id']}/move", json={"node_id": target["id"]}
    )
    assert r.status_code == 202, r.text
    await life.settle()
    assert tenant["vmid"] not in life.sim.containers  # destroyed on the target
    op = await life.operation(r.json()["id"])
    assert op["status"] == "failed" and "force-deleted" in op["error"]
    assert (await life.plane.tenant(tenant["id"]))["status"] == "deleted"
    assert await life.plane.ledger_exact()
