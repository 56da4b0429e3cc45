"""Snapshots in the simulator against pve-container / pve-guest-common (reference section 13)."""

from __future__ import annotations

import asyncio

import httpx

from controlplane.pvesim import Simulator

from .conftest import AUDITOR, finish_tasks
from .test_fidelity import clone

SNAP = "/nodes/pve1/lxc/101/snapshot"


async def run(api: httpx.AsyncClient, sim: Simulator, method: str, path: str, **data: str) -> str:
    """Send a task-starting request; wait for the task; return its exit status."""
    response = await api.request(method, path, data=data or None)
    assert response.status_code == 200, response.reason_phrase
    upid = response.json()["data"]
    await finish_tasks(sim)
    return str(sim.tasks[upid].exitstatus)


async def test_create_list_config_and_delete(api: httpx.AsyncClient, sim: Simulator) -> None:
    await clone(api, sim, 101)
    response = await api.post(SNAP, data={"snapname": "before", "description": "first"})
    upid = response.json()["data"]
    assert ":vzsnapshot:101:" in upid
    await asyncio.sleep(0.01)  # the worker takes the lock as it starts
    assert sim.containers[101].lock == "snapshot"  # held while the task runs
    assert sim.containers[101].snapshots["before"]["snapstate"] == "prepare"
    await finish_tasks(sim)
    assert sim.tasks[upid].exitstatus == "OK" and sim.containers[101].lock is None
    assert await run(api, sim, "POST", SNAP, snapname="after") == "OK"
    items = (await api.get(SNAP)).json()["data"]
    assert [i["name"] for i in items] == ["before", "after", "current"]
    before, after, current = items
    assert before["description"] == "first" and after["description"] == ""
    assert after["parent"] == "before" and "parent" not in before
    assert isinstance(before["snaptime"], int)
    assert current == {
        "name": "current",
        "digest": current["digest"],
        "running": 0,
        "parent": "after",
    }
    config = (await api.get(f"{SNAP}/before/config")).json()["data"]
    assert config["hostname"] == sim.containers[101].config["hostname"]
    assert config["description"] == "first" and "lock" not in config
    index = (await api.get(f"{SNAP}/before")).json()["data"]
    assert index == [{"cmd": "rollback"}, {"cmd": "config"}]
    # deleting the parent of 'after' re-links it to its own parent (none)
    response = await api.delete(f"{SNAP}/before")
    assert ":vzdelsnapshot:101:" in response.json()["data"]
    await asyncio.sleep(0.01)
    assert sim.containers[101].lock == "snapshot-delete"
    await finish_tasks(sim)
    items = (await api.get(SNAP)).json()["data"]
    assert [i["name"] for i in items] == ["after", "current"]
    assert "parent" not in items[0] and items[1]["parent"] == "after"


async def test_create_refusals(api: httpx.AsyncClient, sim: Simulator) -> None:
    await clone(api, sim, 101)
    for name in ("current", "vzdump"):  # the only sync checks
        response = await api.post(SNAP, data={"snapname": name})
        assert (response.status_code, response.reason_phrase) == (
            500,
            f"unable to use snapshot name '{name}' (reserved name)",
        )
    one_char = await api.post(SNAP, data={"snapname": "a"})  # a config id has 2+ characters
    assert one_char.json()["errors"] == {
        "snapname": "invalid format - invalid configuration ID 'a'\n"
    }
    bad = await api.post(SNAP, data={"snapname": "1abc"})
    assert bad.status_code == 400
    assert bad.json()["errors"] == {
        "snapname": "invalid format - invalid configuration ID '1abc'\n"
    }
    long = await api.post(SNAP, data={"snapname": "a" * 41})
    assert long.json()["errors"] == {"snapname": "value may only be 40 characters long"}
    missing = await api.post(SNAP, data={})
    assert missing.json()["errors"] == {"snapname": "property is missing and it is not optional"}
    assert (await api.post(SNAP, data={"snapname": "x"}, headers=AUDITOR)).reason_phrase == (
        "Permission check failed (/vms/101, VM.Snapshot)"
    )
    assert await run(api, sim, "POST", SNAP, snapname="one") == "OK"
    assert await run(api, sim, "POST", SNAP, snapname="one") == "snapshot name 'one' already used"
    sim.containers[101].config["lock"] = "backup"
    assert await run(api, sim, "POST", SNAP, snapname="two") == "CT is locked (backup)"
    sim.containers[101].config.pop("lock")
    template = await run(api, sim, "POST", "/nodes/pve1/lxc/9000/snapshot", snapname="tt")
    assert template == "you can't take a snapshot if it's a template"
    gone = await run(api, sim, "POST", "/nodes/pve1/lxc/555/snapshot", snapname="tt")
    assert gone == "Configuration file 'nodes/pve1/lxc/555.conf' does not exist"


async def test_a_second_snapshot_meets_the_first_ones_lock(
    api: httpx.AsyncClient, sim: Simulator
) -> None:
    await clone(api, sim, 101)
    sim.durations["vzsnapshot"] = 0.2
    first = (await api.post(SNAP, data={"snapname": "aa"})).json()["data"]
    await asyncio.sleep(0.02)
    second = (await api.post(SNAP, data={"snapname": "bb"})).json()["data"]
    await finish_tasks(sim)
    assert sim.tasks[first].exitstatus == "OK"
    assert sim.tasks[second].exitstatus == "CT is locked (snapshot)"


async def test_delete_and_config_refusals(api: httpx.AsyncClient, sim: Simulator) -> None:
    await clone(api, sim, 101)
    assert await run(api, sim, "DELETE", f"{SNAP}/nope") == "snapshot 'nope' does not exist"
    unknown = await api.get(f"{SNAP}/nope/config")
    assert (unknown.status_code, unknown.reason_phrase) == (500, "snapshot 'nope' does not exist")
    assert (
        await api.get("/nodes/pve1/lxc/101/config", params={"snapshot": "nope"})
    ).status_code == (500)
    assert await run(api, sim, "POST", SNAP, snapname="s1") == "OK"
    sim.containers[101].config["lock"] = "migrate"
    assert await run(api, sim, "DELETE", f"{SNAP}/s1") == "CT is locked (migrate)"
    sim.containers[101].config.pop("lock")
    snap_config = await api.get("/nodes/pve1/lxc/101/config", params={"snapshot": "s1"})
    assert snap_config.json()["data"]["hostname"] == sim.containers[101].hostname
    listing = await api.get("/nodes/pve1/lxc/555/snapshot")
    assert listing.reason_phrase == "Configuration file 'nodes/pve1/lxc/555.conf' does not exist"


async def test_rollback_restores_the_config(api: httpx.AsyncClient, sim: Simulator) -> None:
    await clone(api, sim, 101)
    await api.put("/nodes/pve1/lxc/101/config", data={"memory": "1024", "description": "now"})
    assert await run(api, sim, "POST", SNAP, snapname="big") == "OK"
    await api.put("/nodes/pve1/lxc/101/config", data={"memory": "2048", "cores": "4"})
    status = await run(api, sim, "POST", f"{SNAP}/big/rollback")
    assert status == "OK"
    config = sim.containers[101].config
    assert config["memory"] == 1024 and config["cores"] == 1
    assert config["description"] == "now"  # kept from the current config
    assert sim.containers[101].parent == "big"
    assert "big" in sim.containers[101].snapshots  # a rollback keeps its snapshot
    assert sim.tasks[next(reversed(sim.tasks))].type == "vzrollback"


async def test_rollback_of_a_running_ct_stops_it(api: httpx.AsyncClient, sim: Simulator) -> None:
    """PVE does not refuse: __snapshot_rollback_vm_stop kills a running container first."""
    await clone(api, sim, 101)
    assert await run(api, sim, "POST", SNAP, snapname="s0") == "OK"
    assert await run(api, sim, "POST", "/nodes/pve1/lxc/101/status/start") == "OK"
    assert await run(api, sim, "POST", f"{SNAP}/s0/rollback") == "OK"
    assert sim.containers[101].status == "stopped"
    assert await run(api, sim, "POST", "/nodes/pve1/lxc/101/status/start") == "OK"
    assert await run(api, sim, "POST", f"{SNAP}/s0/rollback", start="1") == "OK"
    assert sim.containers[101].status == "running"


async def test_rollback_refusals(api: httpx.AsyncClient, sim: Simulator) -> None:
    await clone(api, sim, 101)
    assert await run(api, sim, "POST", f"{SNAP}/nope/rollback") == "snapshot 'nope' does not exist"
    assert await run(api, sim, "POST", SNAP, snapname="s0") == "OK"
    sim.containers[101].config["lock"] = "backup"
    assert await run(api, sim, "POST", f"{SNAP}/s0/rollback") == "CT is locked (backup)"
    sim.containers[101].config.pop("lock")
    sim.containers[101].snapshots["s0"]["snapstate"] = "delete"
    assert await run(api, sim, "POST", f"{SNAP}/s0/rollback") == (
        "unable to rollback to incomplete snapshot (snapstate = delete)"
    )
    only_audit = await api.post(f"{SNAP}/s0/rollback", headers=AUDITOR)
    assert only_audit.reason_phrase == (
        "Permission check failed (/vms/101, VM.Snapshot|VM.Snapshot.Rollback)"
    )


async def test_injected_failures_apply_to_snapshot_tasks(
    api: httpx.AsyncClient, sim: Simulator
) -> None:
    await clone(api, sim, 101)
    sim.faults.update({"task_failure_rate": 1.0})
    status = await run(api, sim, "POST", SNAP, snapname="s0")
    assert status.startswith("lvcreate 'pve/snap_vm-101-disk-0_s0' error")
    assert sim.containers[101].snapshots == {} and sim.containers[101].lock is None
    log = (await api.get(f"/nodes/pve1/tasks/{next(reversed(sim.tasks))}/log")).json()["data"]
    assert log[-1]["t"].startswith("TASK ERROR: lvcreate")
