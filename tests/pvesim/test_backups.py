"""Backups, storage content and restore in the simulator (reference section 14)."""

from __future__ import annotations

import asyncio
import re

import httpx

from controlplane.pvesim import Simulator

from .conftest import AUDITOR, NOBODY, finish_tasks
from .test_fidelity import clone
from .test_snapshots import run

VOLID = re.compile(r"^local:backup/vzdump-lxc-101-\d{4}_\d{2}_\d{2}-\d{2}_\d{2}_\d{2}\.tar\.zst$")
CONTENT = "/nodes/pve1/storage/local/content"


async def backup(api: httpx.AsyncClient, sim: Simulator, **extra: str) -> str:
    data = {"vmid": "101", "storage": "local", "mode": "snapshot", "compress": "zstd", **extra}
    return await run(api, sim, "POST", "/nodes/pve1/vzdump", **data)


def last_log(sim: Simulator) -> list[str]:
    return list(next(reversed(sim.tasks.values())).log)


async def test_storage_list_filters(api: httpx.AsyncClient, sim: Simulator) -> None:
    items = (await api.get("/nodes/pve1/storage")).json()["data"]
    assert {(i["storage"], i["type"], i["content"]) for i in items} == {
        ("local", "dir", "backup,iso,vztmpl"),
        ("local-lvm", "lvmthin", "images,rootdir"),
    }
    assert all(i["shared"] == 0 and i["active"] == 1 for i in items)
    only = (await api.get("/nodes/pve1/storage", params={"content": "backup"})).json()["data"]
    assert [i["storage"] for i in only] == ["local"]
    assert (await api.get("/nodes/pve1/storage", headers=NOBODY)).json()["data"] == []
    missing = await api.get("/nodes/pve1/storage/nope/content")
    assert (missing.status_code, missing.reason_phrase) == (500, "storage 'nope' does not exist")
    denied = await api.get(CONTENT, headers=NOBODY)
    assert denied.reason_phrase == (
        "Permission check failed (/storage/local, Datastore.Audit|Datastore.AllocateSpace)"
    )


async def test_backup_locks_the_ct_and_lands_on_the_storage(
    api: httpx.AsyncClient, sim: Simulator
) -> None:
    await clone(api, sim, 101)
    sim.durations.update({"vzdump": 0.05, "vzdump_per_gib": 0.05})  # 8 GiB: 0.45 s
    response = await api.post(
        "/nodes/pve1/vzdump",
        data={"vmid": "101", "storage": "local", "compress": "zstd",
              "notes-template": "{{guestname}} on {{node}}", "protected": "1"},
    )  # fmt: skip
    upid = response.json()["data"]
    assert ":vzdump:101:" in upid
    await asyncio.sleep(0.3)  # still writing: the disk decides how long
    assert sim.containers[101].lock == "backup"
    refused = await api.put("/nodes/pve1/lxc/101/config", data={"memory": "1024"})
    assert (refused.status_code, refused.reason_phrase) == (500, "CT is locked (backup)")
    snap = await api.post("/nodes/pve1/lxc/101/snapshot", data={"snapname": "during"})
    await finish_tasks(sim)
    assert sim.tasks[snap.json()["data"]].exitstatus == "CT is locked (backup)"
    assert sim.tasks[upid].exitstatus == "OK" and sim.containers[101].lock is None
    items = (await api.get(CONTENT, params={"content": "backup", "vmid": "101"})).json()["data"]
    assert len(items) == 1
    item = items[0]
    assert VOLID.match(item["volid"]), item["volid"]
    assert item["format"] == "tar.zst" and item["content"] == "backup" and item["vmid"] == 101
    assert item["notes"] == "debian-12-tpl-pve1 on pve1" and item["protected"] == 1
    assert isinstance(item["ctime"], int) and item["size"] > 0
    assert "INFO: Backup job finished successfully" in sim.tasks[upid].log
    # a local storage is per node: pve2's 'local' does not have it
    assert (await api.get("/nodes/pve2/storage/local/content")).json()["data"] == []


async def test_backup_refusals(api: httpx.AsyncClient, sim: Simulator) -> None:
    await clone(api, sim, 101)
    wrong = await backup(api, sim, storage="local-lvm")
    assert wrong == (
        "could not get storage information for 'local-lvm': can't use storage 'local-lvm' "
        "for backups - wrong content type"
    )
    assert await backup(api, sim, storage="nope") == (
        "could not get storage information for 'nope': storage 'nope' does not exist"
    )
    sim.containers[101].config["lock"] = "snapshot"
    assert await backup(api, sim) == "job errors"
    assert "ERROR: Backup of VM 101 failed - CT is locked (snapshot)" in last_log(sim)
    sim.containers[101].config.pop("lock")
    gone = await run(api, sim, "POST", "/nodes/pve1/vzdump", vmid="555", storage="local")
    assert gone == "job errors"
    elsewhere = await api.post("/nodes/pve2/vzdump", data={"vmid": "101", "storage": "local"})
    assert elsewhere.json()["data"] == "OK"  # PVE: silent exit, no task
    cases = {
        (("all", "1"), ("vmid", "101")): {"all": "option conflicts with option 'vmid'"},
        (("storage", "local"),): {"vmid": "property is missing"},
        (("vmid", "101"), ("stdout", "1")): {
            "stdout": "option is only allowed on the command line interface."
        },
        (("vmid", "abc"),): {"vmid": "invalid format - value does not look like a valid VM ID\n"},
        (("vmid", "101"), ("mode", "fast")): {
            "mode": "value 'fast' does not have a value in the enumeration "
            "'snapshot, suspend, stop'"
        },
        (("vmid", "101"), ("notes-template", "a\nb")): {"notes-template": "contains a line feed"},
    }
    for pairs, errors in cases.items():
        response = await api.post("/nodes/pve1/vzdump", data=dict(pairs))
        assert response.status_code == 400 and response.json()["errors"] == errors, pairs
    not_root = await api.post(
        "/nodes/pve1/vzdump", data={"vmid": "101", "bwlimit": "10"}, headers=AUDITOR
    )
    assert not_root.json()["errors"] == {"bwlimit": "Only root may set this option."}


async def test_one_vzdump_at_a_time_per_node(api: httpx.AsyncClient, sim: Simulator) -> None:
    await clone(api, sim, 101)
    await clone(api, sim, 102)
    first = (await api.post("/nodes/pve1/vzdump", data={"vmid": "101"})).json()["data"]
    second = (await api.post("/nodes/pve1/vzdump", data={"vmid": "102"})).json()["data"]
    await finish_tasks(sim)
    assert sim.tasks[first].exitstatus == sim.tasks[second].exitstatus == "OK"
    assert sim.tasks[second].log[:2] == [
        "INFO: trying to get global lock - waiting...",
        "INFO: got global lock",
    ]
    assert sim.tasks[second].endtime is not None
    assert sim.tasks[first].endtime is not None
    names = [i["volid"] for i in (await api.get(CONTENT)).json()["data"]]
    assert [n.split("-")[2] for n in names] == ["101", "102"]
    assert all(n.endswith(".tar") for n in names)  # compress defaults to 0


async def test_stop_mode_stops_and_restarts(api: httpx.AsyncClient, sim: Simulator) -> None:
    await clone(api, sim, 101)
    assert await run(api, sim, "POST", "/nodes/pve1/lxc/101/status/start") == "OK"
    sim.durations["vzdump"] = 0.2
    upid = (await api.post("/nodes/pve1/vzdump", data={"vmid": "101", "mode": "stop"})).json()
    await asyncio.sleep(0.1)
    assert sim.containers[101].status == "stopped"
    await finish_tasks(sim)
    assert sim.tasks[upid["data"]].exitstatus == "OK"
    assert sim.containers[101].status == "running"


async def test_delete_volume(api: httpx.AsyncClient, sim: Simulator) -> None:
    await clone(api, sim, 101)
    assert await backup(api, sim) == "OK"
    assert await backup(api, sim, protected="1") == "OK"
    plain, kept = (i["volid"] for i in (await api.get(CONTENT)).json()["data"])
    response = await api.delete(f"{CONTENT}/{plain}")  # the '/' of the volid may stay raw
    upid = response.json()["data"]
    assert ":imgdel:101@local:" in upid
    await finish_tasks(sim)
    assert sim.tasks[upid].exitstatus == "OK"
    assert [i["volid"] for i in (await api.get(CONTENT)).json()["data"]] == [kept]
    encoded = plain.replace(":", "%3A").replace("/", "%2F")
    assert await run(api, sim, "DELETE", f"{CONTENT}/{encoded}") == "OK"  # gone: no error
    protected = await run(api, sim, "DELETE", f"{CONTENT}/{kept}")
    assert protected == f"cannot remove protected archive '/var/lib/vz/dump/{kept.split('/')[1]}'"
    mismatch = await api.delete(f"/nodes/pve1/storage/local-lvm/content/{kept}")
    assert mismatch.json()["errors"] == {"volume": "storage ID mismatch (local != local-lvm)\n"}
    denied = await api.delete(f"{CONTENT}/{kept}", headers=AUDITOR)
    assert (
        denied.reason_phrase == "Permission check failed (/storage/local, Datastore.AllocateSpace)"
    )


async def test_restore_over_the_same_ct(api: httpx.AsyncClient, sim: Simulator) -> None:
    await clone(api, sim, 101)
    await api.put("/nodes/pve1/lxc/101/config", data={"memory": "1024"})
    assert await backup(api, sim) == "OK"
    volid = (await api.get(CONTENT)).json()["data"][0]["volid"]
    assert await run(api, sim, "POST", "/nodes/pve1/lxc/101/snapshot", snapname="s1") == "OK"
    await api.put("/nodes/pve1/lxc/101/config", data={"memory": "4096"})
    form = {"vmid": "101", "ostemplate": volid, "restore": "1", "force": "1",
            "storage": "local-lvm"}  # fmt: skip
    response = await api.post("/nodes/pve1/lxc", data=form)
    upid = response.json()["data"]
    assert ":vzrestore:101:" in upid
    assert sim.containers[101].lock == "create"
    await finish_tasks(sim)
    assert sim.tasks[upid].exitstatus == "OK"
    ct = sim.containers[101]
    assert ct.lock is None and ct.config["memory"] == 1024 and ct.snapshots == {}
    assert ct.config["rootfs"].startswith("local-lvm:vm-101-disk-0,size=")
    # onto a new vmid, with a config key given
    assert await run(
        api, sim, "POST", "/nodes/pve1/lxc", vmid="150", ostemplate=volid, restore="1",
        storage="local-lvm", hostname="copy", start="1",
    ) == "OK"  # fmt: skip
    assert sim.containers[150].hostname == "copy" and sim.containers[150].running


async def test_restore_refusals(api: httpx.AsyncClient, sim: Simulator) -> None:
    await clone(api, sim, 101)
    assert await backup(api, sim) == "OK"
    volid = (await api.get(CONTENT)).json()["data"][0]["volid"]
    form = {"vmid": "101", "ostemplate": volid, "restore": "1", "storage": "local-lvm"}
    exists = await api.post("/nodes/pve1/lxc", data=form)
    assert (exists.status_code, exists.reason_phrase) == (
        500,
        "CT 101 already exists on node 'pve1'",
    )
    default_storage = await api.post(
        "/nodes/pve1/lxc", data={**form, "force": "1", "storage": ""} | {"storage": "local"}
    )
    assert default_storage.json()["errors"] == {
        "storage": "storage 'local' does not support container directories"
    }
    sim.containers[101].config["lock"] = "backup"
    locked = await api.post("/nodes/pve1/lxc", data={**form, "force": "1"})
    assert locked.reason_phrase == "unable to restore CT 101 - CT is locked (backup)"
    sim.containers[101].config.pop("lock")
    assert await run(api, sim, "POST", "/nodes/pve1/lxc/101/status/start") == "OK"
    running = await api.post("/nodes/pve1/lxc", data={**form, "force": "1"})
    assert (running.status_code, running.reason_phrase) == (
        500,
        "can't overwrite running container",
    )
    other_node = await api.post("/nodes/pve2/lxc", data={**form, "vmid": "160"})
    upid = other_node.json()["data"]
    await finish_tasks(sim)
    assert sim.tasks[upid].exitstatus.startswith("unable to restore CT 160 - ")
    assert 160 not in sim.containers  # the placeholder config is removed again
    missing = await api.post("/nodes/pve1/lxc", data={**form, "vmid": "170", "ostemplate": "x:y"})
    assert missing.reason_phrase == "storage 'x' does not exist"


async def test_injected_failures_apply_to_backup_and_restore(
    api: httpx.AsyncClient, sim: Simulator
) -> None:
    await clone(api, sim, 101)
    assert await backup(api, sim) == "OK"
    volid = (await api.get(CONTENT)).json()["data"][0]["volid"]
    sim.faults.update({"task_failure_rate": 1.0})
    assert await backup(api, sim) == "job errors"
    assert sim.containers[101].lock is None
    restore = await run(
        api, sim, "POST", "/nodes/pve1/lxc", vmid="101", ostemplate=volid, restore="1",
        force="1", storage="local-lvm",
    )  # fmt: skip
    assert restore.startswith("unable to restore CT 101 - ")
    assert 101 not in sim.containers  # past the point of no return PVE destroys the config
