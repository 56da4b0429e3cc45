"""The whole lifecycle against the simulator: provision, suspend, resume, resize, delete."""

from __future__ import annotations

import asyncio
import socket

from tests.provisioner.conftest import Plane


async def test_provision_to_active(plane: Plane) -> None:
    tenants = [await plane.create(f"t{i}") for i in range(6)]
    await plane.worker.run_until_idle(timeout=60)
    containers = plane.sim_containers()
    for t in tenants:
        got = await plane.tenant(t["id"])
        assert got["status"] == "active", got
        assert got["ip_address"] and got["step"] is None and got["last_error"] is None
        ct = containers[got["vmid"]]
        assert ct.running and ct.hostname == t["subdomain"]
        assert str(t["id"]) in ct.config["description"]
        assert ct.config["memory"] == 512 and "controlplane" in ct.config["tags"]
    # Placement spread the tenants over both nodes only where the template exists (pve1: 9000).
    assert {c.node for c in containers.values()} == {"pve1"}
    assert await plane.ledger_exact()


async def test_suspend_resume_delete(plane: Plane) -> None:
    t = await plane.create("acme")
    await plane.worker.run_until_idle()
    vmid = (await plane.tenant(t["id"]))["vmid"]

    assert (await plane.admin.post(f"/api/v1/tenants/{t['id']}/suspend")).status_code == 202
    await plane.worker.run_until_idle()
    assert (await plane.tenant(t["id"]))["status"] == "suspended"
    assert not plane.sim_containers()[vmid].running

    assert (await plane.admin.post(f"/api/v1/tenants/{t['id']}/resume")).status_code == 202
    await plane.worker.run_until_idle()
    assert (await plane.tenant(t["id"]))["status"] == "active"
    assert plane.sim_containers()[vmid].running

    r = await plane.admin.put(f"/api/v1/tenants/{t['id']}", json={"ram_mb": 1024, "cores": 2})
    assert r.status_code == 200 and r.json()["config_pending"]
    await plane.worker.run_until_idle()
    got = await plane.tenant(t["id"])
    assert not got["config_pending"]
    assert plane.sim_containers()[vmid].config["memory"] == 1024

    assert (await plane.admin.delete(f"/api/v1/tenants/{t['id']}")).status_code == 202
    await plane.worker.run_until_idle()
    got = await plane.tenant(t["id"])
    assert got["status"] == "deleted" and got["deleted_at"]
    assert vmid not in plane.sim_containers()
    nodes = (await plane.admin.get("/api/v1/nodes")).json()["items"]
    assert all(n["allocated_ram_mb"] == 0 for n in nodes)
    # The subdomain is free again.
    await plane.create("acme")


async def test_delete_of_a_vanished_container_counts_as_deleted(plane: Plane) -> None:
    t = await plane.create("gone")
    await plane.worker.run_until_idle()
    vmid = (await plane.tenant(t["id"]))["vmid"]
    del plane.sim.sim.containers[vmid]  # type: ignore[attr-defined]
    await plane.admin.delete(f"/api/v1/tenants/{t['id']}")
    await plane.worker.run_until_idle()
    assert (await plane.tenant(t["id"]))["status"] == "deleted"
    assert await plane.ledger_exact()


async def test_foreign_container_on_our_vmid_is_left_alone(plane: Plane) -> None:
    # Someone created CT 10000 on the cluster behind our back: we must not adopt or delete it.
    sim = plane.sim.sim  # type: ignore[attr-defined]
    from controlplane.pvesim.models import Container

    sim.containers[10000] = Container(10000, "pve1", {"hostname": "foreign", "memory": 128})
    t = await plane.create("mine")
    assert t["vmid"] == 10000
    await plane.worker.run_until_idle()
    got = await plane.tenant(t["id"])
    assert got["status"] == "active" and got["vmid"] != 10000
    assert sim.containers[10000].hostname == "foreign"


async def test_failing_tasks_end_active_or_error_never_between(plane: Plane) -> None:
    plane.sim.sim.faults.update({"task_failure_rate": 0.3, "http_5xx_rate": 0.05})  # type: ignore[attr-defined]
    plane.worker.max_attempts = 4
    tenants = [await plane.create(f"f{i}") for i in range(12)]
    await plane.worker.run_until_idle(timeout=120)
    statuses = {}
    for t in tenants:
        got = await plane.tenant(t["id"])
        statuses[got["status"]] = statuses.get(got["status"], 0) + 1
        assert got["status"] in ("active", "error"), got
        if got["status"] == "error":
            assert got["last_error"] and got["error_step"]
    assert await plane.ledger_exact()
    # Errors can be retried once the faults are gone, and then converge.
    plane.sim.sim.faults.update({"task_failure_rate": 0.0, "http_5xx_rate": 0.0})  # type: ignore[attr-defined]
    for t in tenants:
        if (await plane.tenant(t["id"]))["status"] == "error":
            assert (await plane.admin.post(f"/api/v1/tenants/{t['id']}/retry")).status_code == 202
    await plane.worker.run_until_idle(timeout=120)
    for t in tenants:
        assert (await plane.tenant(t["id"]))["status"] == "active"


async def test_two_workers_never_work_on_one_tenant(plane: Plane) -> None:
    from tests.provisioner.conftest import make_worker

    other = make_worker(plane.app)
    tenants = [await plane.create(f"w{i}") for i in range(10)]
    await asyncio.gather(plane.worker.run_until_idle(timeout=60), other.run_until_idle(timeout=60))
    for t in tenants:
        assert (await plane.tenant(t["id"]))["status"] == "active"
    # Each clone happened exactly once: no duplicate or failed clone tasks.
    tasks = [task for task in plane.sim.sim.tasks.values() if task.type == "vzclone"]  # type: ignore[attr-defined]
    assert len(tasks) == 10 and all(task.exitstatus == "OK" for task in tasks)


async def test_orphans_are_listed_and_removable(plane: Plane) -> None:
    a = await plane.create("keep")
    b = await plane.create("lost")
    await plane.worker.run_until_idle()
    vmid_b = (await plane.tenant(b["id"]))["vmid"]
    # The row vanishes behind our back: its container becomes an orphan.
    await plane.db.execute(
        "UPDATE tenants SET status = 'deleted' WHERE id = %(id)s", {"id": b["id"]}
    )
    r = await plane.admin.get("/api/v1/orphans")
    assert r.status_code == 200, r.text
    assert [o["vmid"] for o in r.json()["items"]] == [vmid_b]
    assert r.json()["unreachable_nodes"] == []
    node_id = r.json()["items"][0]["node_id"]
    vmid_a = (await plane.tenant(a["id"]))["vmid"]
    assert (await plane.admin.delete(f"/api/v1/orphans/{node_id}/{vmid_a}")).status_code == 409
    assert (
        await plane.admin.delete(f"/api/v1/orphans/{node_id}/9000")
    ).status_code == 409  # the template
    assert (await plane.admin.delete(f"/api/v1/orphans/{node_id}/{vmid_b}")).status_code == 204
    assert vmid_b not in plane.sim_containers() and vmid_a in plane.sim_containers()
    assert (await plane.admin.get("/api/v1/orphans")).json()["total"] == 0
    assert (await plane.admin.delete(f"/api/v1/orphans/{node_id}/{vmid_b}")).status_code == 404


async def test_orphan_listing_reports_the_nodes_it_could_not_read(plane: Plane) -> None:
    lost = await plane.create("lost")
    await plane.worker.run_until_idle()
    tenant = await plane.tenant(lost["id"])
    await plane.db.execute(
        "UPDATE tenants SET status = 'deleted' WHERE id = %(id)s", {"id": lost["id"]}
    )
    other = next(n for n in plane.nodes if n["id"] != tenant["node_id"])
    with socket.socket() as s:  # a port nobody listens on: the connection is refused
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    await plane.db.execute(
        "UPDATE nodes SET api_url = %(url)s, updated_at = now() WHERE id = %(id)s",
        {"url": f"https://127.0.0.1:{closed}", "id": other["id"]},
    )
    r = await plane.admin.get("/api/v1/orphans")
    assert r.status_code == 200, r.text
    assert [o["vmid"] for o in r.json()["items"]] == [tenant["vmid"]]
    schema = (await plane.admin.get("/openapi.json")).json()["components"]["schemas"]
    assert "unreachable_nodes" in schema["OrphanList"]["required"]
    assert set(schema["UnreachableNode"]["required"]) == {"node_id", "node", "reason"}
    (unread,) = r.json()["unreachable_nodes"]
    assert (unread["node_id"], unread["node"]) == (other["id"], other["name"])
    assert unread["reason"].startswith("ProxmoxUnavailableError: "), unread

    # A node the poller has marked offline is not asked, and is reported with its last error.
    await plane.db.execute(
        "UPDATE nodes SET status = 'offline', last_error = 'no route to host' WHERE id = %(id)s",
        {"id": other["id"]},
    )
    r = await plane.admin.get("/api/v1/orphans")
    assert r.json()["total"] == 1
    assert r.json()["unreachable_nodes"] == [
        {
            "node_id": other["id"],
            "node": other["name"],
            "reason": "node is offline (no route to host)",
        }
    ]


async def test_bootstrap_commands_run_in_the_container(plane: Plane) -> None:
    r = await plane.admin.put(
        f"/api/v1/projects/{plane.project['id']}",
        json={"bootstrap_commands": ["echo 'hello; world' > /etc/motd", "apt-get install -y app"]},
    )
    assert r.status_code == 200, r.text
    t = await plane.create("boot")
    await plane.worker.run_until_idle()
    got = await plane.tenant(t["id"])
    assert got["status"] == "active", (got["last_error"], got["command_output"])
    assert [c["exit_status"] for c in got["command_output"]] == [0, 0]
    ran = [c["command"] for c in plane.sim_containers()[got["vmid"]].commands]
    assert any("hello; world" in c for c in ran) and any("apt-get install -y app" in c for c in ran)


async def test_a_failing_bootstrap_command_puts_the_tenant_in_error_with_its_output(
    plane: Plane,
) -> None:
    await plane.admin.put(
        f"/api/v1/projects/{plane.project['id']}", json={"bootstrap_commands": ["true", "exit 3"]}
    )
    t = await plane.create("badboot")
    await plane.worker.run_until_idle()
    got = await plane.tenant(t["id"])
    assert got["status"] == "error" and got["error_step"] == "bootstrap"
    assert "exited with 3" in got["last_error"]
    assert [c["exit_status"] for c in got["command_output"]] == [0, 3]
    # Fixed and retried: the command that succeeded is not run again.
    await plane.admin.put(
        f"/api/v1/projects/{plane.project['id']}", json={"bootstrap_commands": ["true", "true"]}
    )
    assert (await plane.admin.post(f"/api/v1/tenants/{t['id']}/retry")).status_code == 202
    await plane.worker.run_until_idle()
    got = await plane.tenant(t["id"])
    assert got["status"] == "active", got
    assert len(plane.sim_containers()[got["vmid"]].commands) == 3
