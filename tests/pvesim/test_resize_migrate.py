"""Resize, reboot and migrate in the simulator (reference sections 15-17)."""

from __future__ import annotations

import asyncio

import httpx

from controlplane.pvesim import SimTransport, Simulator, create_app

from .conftest import AUDITOR, ROOT, finish_tasks, new_sim
from .test_fidelity import clone
from .test_snapshots import run

CT = "/nodes/pve1/lxc/101"


async def test_resize_grows_the_disk(api: httpx.AsyncClient, sim: Simulator) -> None:
    await clone(api, sim, 101)
    response = await api.put(f"{CT}/resize", data={"disk": "rootfs", "size": "+2G"})
    upid = response.json()["data"]
    assert ":resize:101:" in upid  # a task since PVE 5.x (2015)
    await finish_tasks(sim)
    assert sim.tasks[upid].exitstatus == "OK"
    assert sim.containers[101].config["rootfs"] == "local-lvm:vm-101-disk-0,size=10G"
    assert await run(api, sim, "PUT", f"{CT}/resize", disk="rootfs", size="10752M") == "OK"
    assert sim.containers[101].config["rootfs"].endswith(",size=10752M")
    stats = (await api.get(f"{CT}/status/current")).json()["data"]
    assert stats["maxdisk"] == 10752 * 2**20


async def test_resize_refusals(api: httpx.AsyncClient, sim: Simulator) -> None:
    await clone(api, sim, 101)
    cases = {
        "4G": "unable to shrink disk size",
        "8G": "disk is already at specified size",
        "+0": "disk is already at specified size",
    }
    for size, reason in cases.items():
        response = await api.put(f"{CT}/resize", data={"disk": "rootfs", "size": size})
        assert (response.status_code, response.reason_phrase) == (500, reason), size
    bad = await api.put(f"{CT}/resize", data={"disk": "rootfs", "size": "-1G"})
    assert bad.json()["errors"] == {"size": "value does not match the regex pattern"}
    bad_disk = await api.put(f"{CT}/resize", data={"disk": "sda", "size": "+1G"})
    assert "enumeration" in bad_disk.json()["errors"]["disk"]
    sim.containers[101].config["lock"] = "backup"
    locked = await api.put(f"{CT}/resize", data={"disk": "rootfs", "size": "+1G"})
    assert locked.reason_phrase == "CT is locked (backup)"
    sim.containers[101].config.pop("lock")
    stale = await api.put(f"{CT}/resize", data={"disk": "rootfs", "size": "+1G", "digest": "0"})
    assert stale.reason_phrase.startswith("detected modified configuration")
    denied = await api.put(f"{CT}/resize", data={"disk": "rootfs", "size": "+1G"}, headers=AUDITOR)
    assert denied.reason_phrase == "Permission check failed (/vms/101, VM.Config.Disk)"
    missing = await api.put("/nodes/pve1/lxc/555/resize", data={"disk": "rootfs", "size": "+1G"})
    assert missing.reason_phrase == "Configuration file 'nodes/pve1/lxc/555.conf' does not exist"


async def test_reboot_restarts_the_ct(api: httpx.AsyncClient, sim: Simulator) -> None:
    await clone(api, sim, 101)
    assert await run(api, sim, "POST", f"{CT}/status/start") == "OK"
    sim.containers[101].started_at = sim.containers[101].started_at - 600  # up 10 minutes
    before = (await api.get(f"{CT}/status/current")).json()["data"]
    response = await api.post(f"{CT}/status/reboot", data={"timeout": "30"})
    assert ":vzreboot:101:" in response.json()["data"]
    await finish_tasks(sim)
    after = (await api.get(f"{CT}/status/current")).json()["data"]
    assert after["status"] == "running"
    assert after["uptime"] < before["uptime"] and after["pid"] != before["pid"]
    sim.containers[101].config["lock"] = "snapshot"
    assert await run(api, sim, "POST", f"{CT}/status/reboot") == "CT is locked (snapshot)"


async def test_restart_migration_moves_the_ct(api: httpx.AsyncClient, sim: Simulator) -> None:
    await clone(api, sim, 101)
    assert await run(api, sim, "POST", f"{CT}/status/start") == "OK"
    sim.durations.update({"vzmigrate": 0.05, "vzmigrate_per_gib": 0.02})
    response = await api.post(f"{CT}/migrate", data={"target": "pve2", "restart": "1"})
    upid = response.json()["data"]
    assert upid.startswith("UPID:pve1:") and ":vzmigrate:101:" in upid
    await asyncio.sleep(0.15)
    assert sim.containers[101].lock == "migrate" and sim.containers[101].status == "stopped"
    await finish_tasks(sim)
    assert sim.tasks[upid].exitstatus == "OK"
    ct = sim.containers[101]
    assert (ct.node, ct.status, ct.lock) == ("pve2", "running", None)
    assert any("migration finished successfully" in line for line in sim.tasks[upid].log)
    assert (await api.get(f"{CT}/status/current")).status_code == 500  # not on pve1 any more
    moved = await api.get("/nodes/pve2/lxc/101/status/current")
    assert moved.json()["data"]["status"] == "running"


async def test_migrate_sync_refusals(api: httpx.AsyncClient, sim: Simulator) -> None:
    await clone(api, sim, 101)
    local = await api.post(f"{CT}/migrate", data={"target": "pve1"})
    assert local.json()["errors"] == {"target": "target is local node."}
    ghost = await api.post(f"{CT}/migrate", data={"target": "pve7"})
    assert (ghost.status_code, ghost.reason_phrase) == (500, "no such cluster node 'pve7'")
    missing = await api.post("/nodes/pve1/lxc/555/migrate", data={"target": "pve2"})
    assert missing.reason_phrase == "Configuration file 'nodes/pve1/lxc/555.conf' does not exist"
    assert await run(api, sim, "POST", f"{CT}/status/start") == "OK"
    running = await api.post(f"{CT}/migrate", data={"target": "pve2"})
    assert running.reason_phrase == "can't migrate running container without --online or --restart"
    no_target = await api.post(f"{CT}/migrate", data={})
    assert no_target.json()["errors"] == {"target": "property is missing and it is not optional"}
    denied = await api.post(f"{CT}/migrate", data={"target": "pve2"}, headers=AUDITOR)
    assert denied.reason_phrase == "Permission check failed (/vms/101, VM.Migrate)"


async def test_migrate_task_refusals(api: httpx.AsyncClient, sim: Simulator) -> None:
    await clone(api, sim, 101)
    assert await run(api, sim, "POST", f"{CT}/status/start") == "OK"
    online = await run(api, sim, "POST", f"{CT}/migrate", target="pve2", online="1")
    assert online == "migration aborted"
    assert any("lxc live migration is currently not implemented" in x for x in _log(sim))
    assert await run(api, sim, "POST", f"{CT}/status/stop") == "OK"
    sim.containers[101].config["lock"] = "backup"
    assert await run(api, sim, "POST", f"{CT}/migrate", target="pve2") == "migration aborted"
    assert any("CT is locked (backup)" in line for line in _log(sim))
    sim.containers[101].config.pop("lock")
    # local storage: a snapshot cannot go along (only zfspool sends snapshots)
    assert await run(api, sim, "POST", f"{CT}/snapshot", snapname="s1") == "OK"
    assert await run(api, sim, "POST", f"{CT}/migrate", target="pve2") == "migration aborted"
    assert any("non-migratable snapshot exists" in line for line in _log(sim))
    assert sim.containers[101].node == "pve1" and sim.containers[101].lock is None
    assert await run(api, sim, "DELETE", f"{CT}/snapshot/s1") == "OK"
    # a target that cannot be reached; a restart migration starts it again on the source
    assert await run(api, sim, "POST", f"{CT}/status/start") == "OK"
    sim.set_node_online("pve2", False)
    nodes = {n["node"]: n["status"] for n in (await api.get("/nodes")).json()["data"]}
    assert nodes == {"pve1": "online", "pve2": "offline"}
    status = await run(api, sim, "POST", f"{CT}/migrate", target="pve2", restart="1")
    assert status == "migration aborted"
    assert any("Can't connect to destination address using public key" in x for x in _log(sim))
    assert (sim.containers[101].node, sim.containers[101].status) == ("pve1", "running")
    sim.set_node_online("pve2", True)
    sim.faults.update({"task_failure_rate": 1.0})
    status = await run(api, sim, "POST", f"{CT}/migrate", target="pve2", restart="1")
    assert status == "migration aborted"
    assert any("start container on source node" in line for line in _log(sim))
    assert (sim.containers[101].node, sim.containers[101].status) == ("pve1", "running")


def _log(sim: Simulator) -> list[str]:
    return list(next(reversed(sim.tasks.values())).log)


async def test_shared_storage_moves_only_the_config() -> None:
    sim = new_sim(shared_storage=True, storage="ceph")
    sim.durations["vzmigrate_per_gib"] = 10.0  # would take 80 s if the disk were copied
    async with httpx.AsyncClient(
        transport=SimTransport(create_app(sim)), base_url="https://s/api2/json", headers=ROOT
    ) as api:
        await clone(api, sim, 101)
        assert await run(api, sim, "POST", f"{CT}/snapshot", snapname="s1") == "OK"
        assert await run(api, sim, "POST", f"{CT}/migrate", target="pve2") == "OK"
    assert sim.containers[101].node == "pve2"
    assert any("is on shared storage 'ceph'" in line for line in _log(sim))
    await sim.close()


async def test_sim_node_endpoint(sim: Simulator) -> None:
    async with httpx.AsyncClient(transport=SimTransport(create_app(sim))) as raw:
        off = await raw.put("https://s/_sim/nodes/pve2", json={"online": False})
        assert off.json() == {"node": "pve2", "online": False}
        assert sim.offline_nodes == {"pve2"}
        assert (await raw.put("https://s/_sim/nodes/pve9", json={"online": True})).status_code == (
            404
        )
        assert (await raw.put("https://s/_sim/nodes/pve2", json={"online": 1})).status_code == 400


async def test_linked_clone_on_local_zfs_cannot_migrate_but_moves_by_backup_and_restore() -> None:
    """A linked clone on a local zfspool names its base image, and Migrate.pm refuses it
    (`clone of '<base>'`); a backup on a shared store, a destroy and a restore of the same
    VMID on the target is the way across. The restore refuses while the source's config
    still holds the VMID (VMIDs are one namespace for the cluster)."""
    from controlplane.pvesim.storage import Storage

    nfs = Storage("nfs", "nfs", frozenset({"backup"}), shared=True, path="/mnt/pve/nfs")
    sim = new_sim(storage="local-zfs", storage_type="zfspool", extra_storages=[nfs])
    async with httpx.AsyncClient(
        transport=SimTransport(create_app(sim)), base_url="https://s/api2/json", headers=ROOT
    ) as api:
        await clone(api, sim, 101)
        volid = "local-zfs:base-9000-disk-0/subvol-101-disk-0"
        assert sim.containers[101].config["rootfs"] == f"{volid},size=8G"
        storages = (await api.get("/nodes/pve1/storage")).json()["data"]
        assert {s["storage"]: s["type"] for s in storages}["local-zfs"] == "zfspool"
        assert await run(api, sim, "POST", f"{CT}/migrate", target="pve2") == "migration aborted"
        log = _log(sim)
        assert any(f"can't migrate local volume '{volid}': clone of 'base-9000-disk-0'" in x
                   for x in log)  # fmt: skip
        assert any("can't migrate CT - check log" in x for x in log)
        assert sim.containers[101].node == "pve1" and sim.containers[101].lock is None
        # the fallback: vzdump to the shared store, restore on pve2 once the source is gone
        assert await run(api, sim, "POST", "/nodes/pve1/vzdump", vmid="101", storage="nfs") == "OK"
        archive = next(iter(sim.backups.values())).volid
        listed = (await api.get("/nodes/pve2/storage/nfs/content")).json()["data"]
        assert [x["volid"] for x in listed] == [archive]  # shared: seen from pve2 too
        early = await api.post(
            "/nodes/pve2/lxc",
            data={"vmid": "101", "ostemplate": archive, "restore": "1", "storage": "local-zfs"},
        )
        assert early.reason_phrase == "CT 101 already exists on node 'pve1'"
        assert await run(api, sim, "DELETE", CT) == "OK"
        restored = await run(
            api, sim, "POST", "/nodes/pve2/lxc",
            vmid="101", ostemplate=archive, restore="1", storage="local-zfs",
        )  # fmt: skip
        assert restored == "OK"
        ct = sim.containers[101]
        assert ct.node == "pve2" and ct.config["rootfs"] == "local-zfs:subvol-101-disk-0,size=8G"
        # a full copy: it migrates back now (a zfspool sends snapshots along, too)
        assert await run(api, sim, "POST", "/nodes/pve2/lxc/101/snapshot", snapname="s1") == "OK"
        assert await run(api, sim, "POST", "/nodes/pve2/lxc/101/migrate", target="pve1") == "OK"
    await sim.close()
