"""Handlers that change containers: clone, power actions, destroy, config, template.

Everything checked synchronously in PVE is checked here before the UPID is returned, and
the locks PVE takes up front (the clone's ``disk`` lock on the source and ``create`` lock on
the target, ``destroyed`` on delete) are set in the same step. What PVE checks inside the
worker (locks on power actions, a start of a missing CT) fails the *task* instead
(docs/proxmox-reference.md sections 3.4, 4.7-4.13).
"""

from __future__ import annotations

import re
from typing import Any

from .auth import Token
from .errors import config_missing, fail, locked, param_error
from .models import Container, Task
from .propstr import LIST_SPLIT, normalize_net, normalize_tags, random_mac
from .simulator import Simulator, TaskFailed
from .storage import volume_name
from .views import config_digest

_NET_KEY = re.compile(r"^net\d+$")
_CONTROL_KEYS = {"node", "vmid", "digest", "delete", "revert"}


def _root_only_skiplock(token: Token, p: dict[str, Any]) -> None:
    if p.get("skiplock") and token.user != "root@pam":
        raise param_error({"skiplock": "Only root may use this option."})


def _release_source_lock(sim: Simulator, ct: Container) -> None:
    def release() -> None:
        if ct.config.get("lock") == "disk":
            ct.config.pop("lock", None)

    if sim.faults.stuck_lock_seconds > 0:
        sim.later(sim.faults.stuck_lock_seconds, release)
    else:
        release()


def clone(sim: Simulator, token: Token, p: dict[str, Any]) -> Any:
    node, vmid, newid = p["node"], p["vmid"], p["newid"]
    src = sim.container_on(node, vmid)
    full = bool(p["full"]) if "full" in p else not src.is_template
    if not src.is_template:
        full = True  # "This is always done when you clone a normal CT"
    storage = p.get("storage")
    if storage is not None and not full:
        raise fail("parameter 'storage' not allowed for linked clones")
    target = p.get("target")
    if target is not None:
        if target not in sim.nodes:
            raise fail(f"no such cluster node '{target}'")
        if target != node and not sim.shared_storage:
            raise fail(f"can't clone CT to node '{target}' (CT uses local storage)")
    if full and src.running and not p.get("snapname"):
        raise fail("Cannot do full clones on a running container without snapshots")
    if src.lock:
        raise locked(src.lock)
    token.check(f"/storage/{storage or sim.storage}", ["Datastore.AllocateSpace"])
    src.config["lock"] = "disk"
    taken = sim.vmid_owner(newid)
    if taken is not None:
        src.config.pop("lock", None)
        raise fail(f"CT {newid} already exists on node '{taken.node}'")

    config = {k: v for k, v in src.config.items() if k not in ("lock", "template")}
    for key in [k for k in config if _NET_KEY.match(k)]:
        parts = [x for x in str(config[key]).split(",") if not x.startswith("hwaddr=")]
        config[key] = normalize_net(",".join(parts) + f",hwaddr={random_mac(sim.rng)}", sim.rng)
    volume = str(src.config.get("rootfs", f"{sim.storage}:base-{vmid}-disk-0,size=8G"))
    size = next((x for x in volume.split(",") if x.startswith("size=")), "size=8G")
    base = volume.split(",")[0]
    disk_sid = storage or sim.storage
    linked_base = None if full else base.split(":", 1)[-1]
    config["rootfs"] = (
        f"{disk_sid}:{volume_name(sim.storages.get(disk_sid), newid, linked_base)},{size}"
    )
    if p.get("hostname") is not None:
        config["hostname"] = p["hostname"]
    if p.get("description") is not None:
        config["description"] = p["description"]
    config["lock"] = "create"
    new = Container(vmid=newid, node=node, config=config)
    sim.containers[newid] = new

    async def body(task: Task) -> None:
        kind = "full" if full else "linked"
        task.log.append(f"create {kind} clone of mountpoint rootfs ({base})")
        await sim.pause("vzclone")
        if task.inject_failure:
            if sim.containers.get(newid) is new:
                del sim.containers[newid]
            raise TaskFailed(
                f"clone failed: cfs-lock 'storage-{storage or sim.storage}' error: "
                "got lock request timeout"
            )
        new.config.pop("lock", None)
        if target is not None:
            new.node = target

    return sim.start_task(
        node, "vzclone", str(vmid), token, body, cleanup=lambda _t: _release_source_lock(sim, src)
    ).upid


def _worker_container(sim: Simulator, node: str, vmid: int, skiplock: bool) -> Container:
    """What a power-action worker finds: a config on the node, not locked."""
    ct = sim.containers.get(vmid)
    if ct is None or ct.node != node:
        raise TaskFailed(config_missing(node, vmid).message)
    if ct.lock and ct.lock != "mounted" and not skiplock:
        raise TaskFailed(f"CT is locked ({ct.lock})")
    return ct


def start(sim: Simulator, token: Token, p: dict[str, Any]) -> Any:
    node, vmid = p["node"], p["vmid"]
    _root_only_skiplock(token, p)
    current = sim.containers.get(vmid)
    if current is not None and current.node == node and current.running:
        raise fail(f"CT {vmid} already running")

    async def body(task: Task) -> None:
        ct = _worker_container(sim, node, vmid, bool(p.get("skiplock")))
        if ct.is_template:
            raise TaskFailed("you can't start a CT if it's a template")
        await sim.pause("vzstart")
        if task.inject_failure:
            raise TaskFailed(f"startup for container '{vmid}' failed")
        if ct.running:
            raise TaskFailed(f"CT {vmid} already running")
        await sim.container_started(ct)

    return sim.start_task(node, "vzstart", str(vmid), token, body).upid


def _require_running(sim: Simulator, node: str, vmid: int, word: str = "CT") -> Container:
    ct = sim.containers.get(vmid)
    if ct is None or ct.node != node or not ct.running:
        raise fail(f"{word} {vmid} not running")
    return ct


def stop(sim: Simulator, token: Token, p: dict[str, Any]) -> Any:
    node, vmid = p["node"], p["vmid"]
    _root_only_skiplock(token, p)
    _require_running(sim, node, vmid)

    async def body(task: Task) -> None:
        ct = _worker_container(sim, node, vmid, bool(p.get("skiplock")))
        await sim.pause("vzstop")
        if task.inject_failure:
            raise TaskFailed(f"command 'lxc-stop -n {vmid} --kill' failed: exit code 1")
        await sim.container_stopped(ct)

    return sim.start_task(node, "vzstop", str(vmid), token, body).upid


def shutdown(sim: Simulator, token: Token, p: dict[str, Any]) -> Any:
    node, vmid = p["node"], p["vmid"]
    _require_running(sim, node, vmid)

    async def body(task: Task) -> None:
        ct = _worker_container(sim, node, vmid, False)
        await sim.pause("vzshutdown")
        if task.inject_failure and not p.get("forceStop"):
            raise TaskFailed("container did not stop")
        await sim.container_stopped(ct)

    return sim.start_task(node, "vzshutdown", str(vmid), token, body).upid


def reboot(sim: Simulator, token: Token, p: dict[str, Any]) -> Any:
    node, vmid = p["node"], p["vmid"]
    _require_running(sim, node, vmid, word="VM")  # pve-container really says "VM" here

    async def body(task: Task) -> None:
        ct = _worker_container(sim, node, vmid, False)
        await sim.pause("vzreboot")
        if task.inject_failure:
            raise TaskFailed("container did not stop")
        await sim.container_stopped(ct)
        await sim.container_started(ct)

    return sim.start_task(node, "vzreboot", str(vmid), token, body).upid


def delete(sim: Simulator, token: Token, p: dict[str, Any]) -> Any:
    node, vmid = p["node"], p["vmid"]
    ct = sim.container_on(node, vmid)
    if ct.config.get("protection"):
        raise fail(f"can't remove CT {vmid} - protection mode enabled")
    if ct.lock:
        raise locked(ct.lock)
    if ct.running and not p.get("force"):
        raise fail(f"unable to destroy CT {vmid} - container is running")
    ct.config["lock"] = "destroyed"

    async def body(task: Task) -> None:
        if ct.running:
            task.log.append(f"stopping CT {vmid}")
            await sim.container_stopped(ct)
        await sim.pause("vzdestroy")
        if task.inject_failure:
            ct.config.pop("lock", None)
            raise TaskFailed(
                f"lvremove 'pve/vm-{vmid}-disk-0' error: Logical volume pve/vm-{vmid}-disk-0 "
                "in use."
            )
        task.log.append(f'  Logical volume "vm-{vmid}-disk-0" successfully removed.')
        if sim.containers.get(vmid) is ct:
            del sim.containers[vmid]  # the config file goes last: the vmid is taken till now

    return sim.start_task(node, "vzdestroy", str(vmid), token, body).upid


def set_config(sim: Simulator, token: Token, p: dict[str, Any]) -> Any:
    ct = sim.container_on(p["node"], p["vmid"])
    if ct.lock:
        raise locked(ct.lock)
    if "digest" in p and p["digest"] != config_digest(ct):
        raise fail("detected modified configuration - file changed by other user? Try again.")
    changes = {k: v for k, v in p.items() if k not in _CONTROL_KEYS}
    deletes = [k for k in LIST_SPLIT.split(str(p.get("delete", ""))) if k]
    reverts = [k for k in LIST_SPLIT.split(str(p.get("revert", ""))) if k]
    if not changes and not deletes and not reverts:
        raise fail("no options specified")
    for key in deletes:
        if key in changes:
            raise fail(f"you can't change and delete the same option '{key}'")
    if "unprivileged" in changes and changes["unprivileged"] != ct.config.get("unprivileged", 0):
        raise fail("unable to modify read-only option: 'unprivileged'")
    for key, value in changes.items():
        if key == "tags":
            value = normalize_tags(str(value))
        elif _NET_KEY.match(key):
            value = normalize_net(str(value), sim.rng)
        ct.config[key] = value
    for key in deletes:
        ct.config.pop(key, None)
    return None


def template(sim: Simulator, token: Token, p: dict[str, Any]) -> Any:
    node, vmid = p["node"], p["vmid"]
    ct = sim.container_on(node, vmid)
    if ct.lock:
        raise locked(ct.lock)
    if ct.is_template:
        raise fail("you can't convert a template to a template")
    if ct.running:
        raise fail("you can't convert a CT to template if the CT is running")

    async def body(task: Task) -> None:
        await sim.pause("vztemplate")
        if task.inject_failure:
            raise TaskFailed(f"rename volume 'vm-{vmid}-disk-0' failed")
        rootfs = str(ct.config.get("rootfs", ""))
        ct.config["rootfs"] = rootfs.replace(f"vm-{vmid}-disk-", f"base-{vmid}-disk-")
        ct.config["template"] = 1

    sim.start_task(node, "vztemplate", str(vmid), token, body)
    return None  # PVE forks the worker but returns null, not the UPID
