"""Container snapshots: list, create, delete, rollback, and a snapshot's config.

As pve-container's ``API2/LXC/Snapshot.pm`` and pve-guest-common's ``AbstractConfig.pm``
do it (docs/proxmox-reference.md section 13): the handlers check only the reserved names
before they return the UPID; everything else (the config exists, the lock, a name that is
taken or unknown) is checked inside the task, so those refusals are failed tasks. A
snapshot takes the ``snapshot`` lock while it is made (``snapstate: prepare``), a delete
the ``snapshot-delete`` lock, a rollback the ``rollback`` lock; a rollback stops a running
container first (``vm_stop($vmid, 1)``) and starts it again only with ``start=1``.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from .auth import Token
from .errors import config_missing, fail
from .models import Container, Task
from .simulator import Simulator, TaskFailed
from .views import config_digest

# Keys __snapshot_copy_config leaves out of a snapshot (AbstractConfig.pm).
_NOT_COPIED = {"lock", "digest", "description"}


def _loaded(sim: Simulator, node: str, vmid: int) -> Container:
    """``load_config`` inside a worker: a missing config fails the task."""
    ct = sim.containers.get(vmid)
    if ct is None or ct.node != node:
        raise TaskFailed(config_missing(node, vmid).message)
    return ct


def _check_lock(ct: Container) -> None:
    if ct.lock:
        raise TaskFailed(f"CT is locked ({ct.lock})")


def _snapshot_of(ct: Container, snapname: str) -> dict[str, Any]:
    snap = ct.snapshots.get(snapname)
    if snap is None:
        raise TaskFailed(f"snapshot '{snapname}' does not exist")
    return snap


def list_snapshots(sim: Simulator, token: Token, p: dict[str, Any]) -> Any:
    ct = sim.container_on(p["node"], p["vmid"])
    items: list[dict[str, Any]] = []
    for name, snap in sorted(ct.snapshots.items(), key=lambda kv: kv[1].get("snaptime", 0)):
        item: dict[str, Any] = {
            "name": name,
            "snaptime": snap.get("snaptime") or 0,
            "description": snap.get("description") or "",
        }
        if snap.get("parent") is not None:
            item["parent"] = snap["parent"]
        if snap.get("snapstate"):
            item["snapstate"] = snap["snapstate"]
        items.append(item)
    current: dict[str, Any] = {
        "name": "current",
        "digest": config_digest(ct),
        "running": int(ct.running),
    }
    if ct.parent is not None:
        current["parent"] = ct.parent
    items.append(current)  # PVE always lists the pseudo-entry 'current' last
    return items


def create_snapshot(sim: Simulator, token: Token, p: dict[str, Any]) -> Any:
    node, vmid, snapname = p["node"], p["vmid"], p["snapname"]
    if snapname in ("current", "vzdump"):
        raise fail(f"unable to use snapshot name '{snapname}' (reserved name)")
    description = p.get("description")

    async def body(task: Task) -> None:
        ct = _loaded(sim, node, vmid)
        if ct.is_template:
            raise TaskFailed("you can't take a snapshot if it's a template")
        _check_lock(ct)
        if snapname in ct.snapshots:
            raise TaskFailed(f"snapshot name '{snapname}' already used")
        for other in ct.snapshots.values():
            if other.get("parent") == snapname:  # PVE breaks the would-be cycle
                task.log.append(
                    f"deleting parent '{snapname}' reference from an older snapshot to avoid "
                    "bogus snapshot cycle."
                )
                del other["parent"]
        ct.config["lock"] = "snapshot"
        snap = {k: copy.deepcopy(v) for k, v in ct.config.items() if k not in _NOT_COPIED}
        if ct.parent is not None:
            snap["parent"] = ct.parent
        snap["snapstate"] = "prepare"
        snap["snaptime"] = int(time.time())
        if description:
            snap["description"] = description
        ct.snapshots[snapname] = snap
        task.log.append(f"create snapshot '{snapname}' of rootfs")
        await sim.pause("vzsnapshot")
        if task.inject_failure:
            ct.snapshots.pop(snapname, None)  # the cleanup deletes the half-made snapshot
            ct.config.pop("lock", None)
            task.log.append("snapshot create failed: starting cleanup")
            raise TaskFailed(
                f"lvcreate 'pve/snap_vm-{vmid}-disk-0_{snapname}' error:   Cannot create new "
                "thin volume, free space in thin pool pve/data reached threshold."
            )
        del snap["snapstate"]
        ct.config.pop("lock", None)
        ct.parent = snapname

    return sim.start_task(node, "vzsnapshot", str(vmid), token, body).upid


def delete_snapshot(sim: Simulator, token: Token, p: dict[str, Any]) -> Any:
    node, vmid, snapname = p["node"], p["vmid"], p["snapname"]

    async def body(task: Task) -> None:
        ct = _loaded(sim, node, vmid)
        snap = _snapshot_of(ct, snapname)
        _check_lock(ct)  # set_lock('snapshot-delete') checks the lock first
        ct.config["lock"] = "snapshot-delete"
        if ct.is_template:  # dies after set_lock, so the lock stays, as in PVE
            raise TaskFailed("you can't delete a snapshot if vm is a template")
        snap["snapstate"] = "delete"
        await sim.pause("vzdelsnapshot")
        if task.inject_failure and not p.get("force"):
            # the lock and the snapstate stay, as when lvremove fails in PVE
            raise TaskFailed(
                f"lvremove 'pve/snap_vm-{vmid}-disk-0_{snapname}' error:   Logical volume "
                f"pve/snap_vm-{vmid}-disk-0_{snapname} in use."
            )
        new_parent = snap.get("parent")
        if ct.parent == snapname:
            ct.parent = new_parent
        for other in ct.snapshots.values():
            if other.get("parent") == snapname:
                if new_parent is None:
                    del other["parent"]
                else:
                    other["parent"] = new_parent
        del ct.snapshots[snapname]
        ct.config.pop("lock", None)

    return sim.start_task(node, "vzdelsnapshot", str(vmid), token, body).upid


def rollback(sim: Simulator, token: Token, p: dict[str, Any]) -> Any:
    node, vmid, snapname = p["node"], p["vmid"], p["snapname"]

    async def body(task: Task) -> None:
        ct = _loaded(sim, node, vmid)
        if ct.is_template:
            raise TaskFailed("you can't rollback if vm is a template")
        snap = _snapshot_of(ct, snapname)
        if snap.get("snapstate"):
            raise TaskFailed(
                f"unable to rollback to incomplete snapshot (snapstate = {snap['snapstate']})"
            )
        _check_lock(ct)
        if ct.running:  # __snapshot_rollback_vm_stop: a forced stop, no refusal
            task.log.append(f"stopping CT {vmid}")
            await sim.container_stopped(ct)
        ct.config["lock"] = "rollback"
        await sim.pause("vzrollback")
        if task.inject_failure:
            raise TaskFailed(
                f"lvconvert 'pve/snap_vm-{vmid}-disk-0_{snapname}' error: Failed to merge snapshot."
            )  # the rollback lock stays, as in PVE when the volume rollback dies
        config = {k: copy.deepcopy(v) for k, v in snap.items()
                  if k not in ("snaptime", "snapstate", "parent", "description")}  # fmt: skip
        for key, value in ct.config.items():
            if key == "description" or key.startswith("unused"):
                config[key] = value  # __snapshot_apply_config keeps these
        ct.config = config
        ct.parent = snapname
        if p.get("start"):
            task.log.append(f"starting CT {vmid}")
            await sim.pause("vzstart")
            await sim.container_started(ct)

    return sim.start_task(node, "vzrollback", str(vmid), token, body).upid


def snapshot_config(sim: Simulator, token: Token, p: dict[str, Any]) -> Any:
    ct = sim.container_on(p["node"], p["vmid"])
    snap = ct.snapshots.get(p["snapname"])
    if snap is None:
        raise fail(f"snapshot '{p['snapname']}' does not exist")
    return copy.deepcopy(snap)


def snapshot_index(sim: Simulator, token: Token, p: dict[str, Any]) -> Any:
    return [{"cmd": "rollback"}, {"cmd": "config"}]
