"""The node poller and the tenant status poller, against the simulator."""

from __future__ import annotations

import asyncio
import signal
import time

from controlplane.nodes.poller import OFFLINE_AFTER, poll_due_nodes
from controlplane.provisioner.status import poll_once
from tests.provisioner.conftest import Plane
from tests.provisioner.test_crash_safety import spawn_worker


async def test_node_goes_offline_after_repeated_failures_and_back(plane: Plane) -> None:
    registry = plane.app.state.cp.proxmox
    plane.sim.sim.faults.update({"http_5xx_rate": 1.0})  # type: ignore[attr-defined]
    for n in range(OFFLINE_AFTER):
        assert await poll_due_nodes(plane.db, registry, period=0) == 2
        nodes = (await plane.admin.get("/api/v1/nodes")).json()["items"]
        expected = "offline" if n + 1 >= OFFLINE_AFTER else "online"
        assert {node["status"] for node in nodes} == {expected}
    assert all("596" in node["last_error"] or "Unavailable" in node["last_error"] for node in nodes)
    seen_before = {node["id"]: node["last_seen"] for node in nodes}
    plane.sim.sim.faults.update({"http_5xx_rate": 0.0})  # type: ignore[attr-defined]
    await poll_due_nodes(plane.db, registry, period=0)
    nodes = (await plane.admin.get("/api/v1/nodes")).json()["items"]
    assert {node["status"] for node in nodes} == {"online"}
    assert all(
        node["last_error"] is None and node["last_seen"] > seen_before[node["id"]] for node in nodes
    )
    assert (
        nodes[0]["templates"] and nodes[0]["mem_used_mb"] is not None and nodes[0]["uptime_s"] >= 0
    )
    assert all(node["cpu_count"] and node["cpu_count"] >= 1 for node in nodes)  # cpuinfo.cpus


async def test_an_offline_node_gets_no_new_tenants(plane: Plane) -> None:
    # Polled "just now" (in the future): the app's own node poller leaves them offline.
    await plane.db.execute(
        "UPDATE nodes SET status = 'offline', polled_at = now() + interval '1 hour'"
    )
    r = await plane.admin.post(
        "/api/v1/tenants", json={"project_id": plane.project["id"], "subdomain": "x"}
    )
    assert r.status_code == 409 and "no room" in r.json()["error"]["message"]


async def test_status_poller_flags_containers_stopped_or_gone_behind_our_back(plane: Plane) -> None:
    a = await plane.create("alive")
    b = await plane.create("stopped")
    c = await plane.create("vanished")
    await plane.worker.run_until_idle()
    sim = plane.sim.sim
    vm = {t["subdomain"]: (await plane.tenant(t["id"]))["vmid"] for t in (a, b, c)}
    sim.containers[vm["stopped"]].status = "stopped"  # type: ignore[attr-defined]
    del sim.containers[vm["vanished"]]  # type: ignore[attr-defined]
    import httpx

    async with httpx.AsyncClient(timeout=2) as http:
        assert await poll_once(plane.worker.ctx, http, period=0) == 3
    health = {t["subdomain"]: (await plane.tenant(t["id"])) for t in (a, b, c)}
    assert health["alive"]["health"] == "ok" and health["alive"]["observed"]["status"] == "running"
    assert health["stopped"]["health"] == "container_stopped"
    assert health["vanished"]["health"] == "container_missing"
    assert all(t["status"] == "active" for t in health.values())  # flagged, not changed


async def test_worker_process_stops_cleanly_on_sigterm(plane: Plane, settings) -> None:  # type: ignore[no-untyped-def]
    plane.sim.sim.durations.update({"vzclone": 2.0})  # type: ignore[attr-defined]
    for i in range(4):
        await plane.create(f"term{i}")
    proc = spawn_worker(settings.database_url)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if await plane.db.fetch_val("SELECT count(*) FROM tenants WHERE lease_owner IS NOT NULL"):
            break
        await asyncio.sleep(0.05)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        code = await asyncio.to_thread(proc.wait, 20)
    finally:
        if proc.poll() is None:  # never leave a hung worker behind
            proc.kill()
            proc.wait(timeout=10)
    took = time.monotonic() - started
    assert code == 0, proc.stderr.read().decode()[-2000:] if proc.stderr else code
    assert took < 12, f"stopping took {took:.1f} s"
    assert (
        await plane.db.fetch_val("SELECT count(*) FROM tenants WHERE lease_owner IS NOT NULL") == 0
    )
    # Another worker finishes the job.
    await plane.worker.run_until_idle(timeout=60)
    assert await plane.db.fetch_val("SELECT count(*) FROM tenants WHERE status <> 'active'") == 0
