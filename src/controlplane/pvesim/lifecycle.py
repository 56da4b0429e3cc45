"""Resize a container's disk, and migrate it to another node (reference sections 15, 17).

Resize runs pve-container's ``$load_and_check`` before it forks, so a lock, a stale digest
and a shrink are sync 500s; the ``resize`` task then grows the volume and rewrites the
``size=`` of the mount point. Migrate checks the target and the running state before it
forks; everything else (the lock, the storage on the target, a target that cannot be
reached, local snapshots) happens in the ``vzmigrate`` task, whose exit status is then
``migration aborted`` with the reason in the log, as pve-guest-common's AbstractMigrate
reports it. A restart migration shuts the container down, moves it, and starts it on the
target; after a failure it is started again on the source.
"""

from __future__ import annotations

import re
import time
from typing import Any

from .auth import Token
from .errors import config_missing, fail, locked, param_error
from .models import Container, Task
from .propstr import disk_size_bytes
from .simulator import Simulator, TaskFailed
from .storage import MIGRATABLE_TYPES, base_of
from .views import config_digest

_SIZE = re.compile(r"^(\d+(?:\.\d+)?)([KMGT]?)$")
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def format_size(size: int) -> str:
    """PVE::JSONSchema::format_size: the largest unit that divides the size exactly."""
    for unit, factor in (("T", 2**40), ("G", 2**30), ("M", 2**20), ("K", 2**10)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


def _with_size(volume: str, size: int) -> str:
    parts = [x for x in volume.split(",") if not x.startswith("size=")]
    return ",".join([*parts, f"size={format_size(size)}"])


def resize(sim: Simulator, token: Token, p: dict[str, Any]) -> Any:
    node, vmid, disk = p["node"], p["vmid"], p["disk"]
    sizestr = str(p["size"])
    grow = sizestr.startswith("+")
    m = _SIZE.match(sizestr.removeprefix("+"))
    if m is None:  # the schema's pattern lets "+1.5G" through; parse_size agrees
        raise fail("invalid size string")
    request = int(float(m.group(1)) * _UNITS[m.group(2)])

    def load_and_check() -> tuple[Container, str, int]:
        ct = sim.container_on(node, vmid)
        if ct.lock:
            raise locked(ct.lock)
        if "digest" in p and p["digest"] != config_digest(ct):
            raise fail("detected modified configuration - file changed by other user? Try again.")
        volume = ct.config.get(disk)
        if volume is None:
            raise fail(f"pvesim: the container has no '{disk}'")
        token.check(f"/storage/{str(volume).split(':', 1)[0]}", ["Datastore.AllocateSpace"])
        size = disk_size_bytes(str(volume))
        newsize = size + request if grow else request
        if newsize < size:
            raise fail("unable to shrink disk size")
        if newsize == size:
            raise fail("disk is already at specified size")
        return ct, str(volume), newsize

    load_and_check()  # "early checks before forking+locking"

    async def body(task: Task) -> None:
        try:
            ct, volume, newsize = load_and_check()
        except Exception as exc:  # the same checks again, now inside the task
            raise TaskFailed(str(exc)) from exc
        task.log.append(f"  Size of logical volume pve/vm-{vmid}-disk-0 changed.")
        await sim.pause("resize")
        if task.inject_failure:
            raise TaskFailed(
                f"lvextend 'pve/vm-{vmid}-disk-0' error:   Insufficient free space: thin pool "
                "pve/data is full."
            )
        ct.config[disk] = _with_size(volume, newsize)
        task.log.append(f"Resizing the filesystem on {disk} to {format_size(newsize)}")

    return sim.start_task(node, "resize", str(vmid), token, body).upid


# -- migrate -------------------------------------------------------------------------------


def _log(task: Task, message: str, level: str = "") -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    task.log.append(f"{stamp} {level + ': ' if level else ''}{message}")


def migrate(sim: Simulator, token: Token, p: dict[str, Any]) -> Any:
    node, vmid, target = p["node"], p["vmid"], p["target"]
    if target == node:
        raise param_error({"target": "target is local node."})
    if target not in sim.nodes:
        raise fail(f"no such cluster node '{target}'")
    ct = sim.container_on(node, vmid)
    online, restart = bool(p.get("online")), bool(p.get("restart"))
    if ct.running and not online and not restart:
        raise fail("can't migrate running container without --online or --restart")
    started = time.monotonic()

    async def body(task: Task) -> None:
        try:
            await _migrate(sim, task, ct, node, target, online, restart, p)
        except TaskFailed as exc:
            took = time.strftime("%H:%M:%S", time.gmtime(time.monotonic() - started))
            _log(task, f"migration aborted (duration {took}): {exc}", "ERROR")
            raise TaskFailed("migration aborted") from exc
        took = time.strftime("%H:%M:%S", time.gmtime(time.monotonic() - started))
        _log(task, f"migration finished successfully (duration {took})")

    return sim.start_task(node, "vzmigrate", str(vmid), token, body).upid


async def _migrate(
    sim: Simulator,
    task: Task,
    ct: Container,
    node: str,
    target: str,
    online: bool,
    restart: bool,
    p: dict[str, Any],
) -> None:
    vmid = ct.vmid
    if sim.containers.get(vmid) is not ct or ct.node != node:
        raise TaskFailed(config_missing(node, vmid).message)
    # prepare (PVE::LXC::Migrate)
    if ct.lock:
        raise TaskFailed(f"CT is locked ({ct.lock})")
    was_running = ct.running
    if was_running and online:
        raise TaskFailed("lxc live migration is currently not implemented")
    if was_running and not restart:
        raise TaskFailed("running container can only be migrated in restart mode")
    volume = str(ct.config.get("rootfs", ""))
    sid = volume.split(":", 1)[0]
    store = sim.storages.get(sid)
    mapped = _target_storage(str(p.get("target-storage") or ""), sid)
    if mapped not in sim.storages:
        raise TaskFailed(f"storage '{mapped}' does not exist")
    if target in sim.offline_nodes:
        raise TaskFailed("Can't connect to destination address using public key")
    if restart and was_running:
        _log(task, f"shutdown CT {vmid}")
        await sim.pause("vzshutdown")
        await sim.container_stopped(ct)
    # phase 1
    try:
        ct.config["lock"] = "migrate"
        ip = f"10.0.0.{sim.nodes[target].index + 11}"
        _log(task, f"starting migration of CT {vmid} to node '{target}' ({ip})")
        shared = store is not None and store.shared
        if shared:
            _log(task, f"volume '{volume.split(',')[0]}' is on shared storage '{sid}'")
        else:
            volid = volume.split(",")[0]
            _log(task, f"found local volume '{volid}' (in current VM config)")
            kind = store.type if store is not None else "unknown"
            reason = None
            if kind not in MIGRATABLE_TYPES:
                reason = f"storage type '{kind}' not supported"
            elif (base := base_of(volid.split(":", 1)[-1])) is not None:
                # "image is a linked clone on local storage, se we can't migrate."
                reason = f"clone of '{base}'"
            if reason is not None:
                _log(task, f"can't migrate local volume '{volid}': {reason}", "ERROR")
                raise TaskFailed("can't migrate CT - check log")
            if ct.snapshots and kind != "zfspool":  # only zfspool sends snapshots along
                _log(
                    task,
                    f"can't migrate local volume '{volume.split(',')[0]}': non-migratable "
                    "snapshot exists",
                    "WARN",
                )
                raise TaskFailed("can't migrate CT - check log")
        disk = 0 if shared else disk_size_bytes(volume)
        await sim.pause_for_disk("vzmigrate", disk)
        if task.inject_failure:
            raise TaskFailed(
                f"command 'set -o pipefail && pvesm export {sid}:vm-{vmid}-disk-0 raw+size - "
                "--with-snapshots 0' failed: exit code 255"
            )
        if mapped != sid:
            ct.config["rootfs"] = volume.replace(f"{sid}:", f"{mapped}:", 1)
        ct.node = target  # the config file moves: the CT is on the target now
    except TaskFailed:
        _log(task, "aborting phase 1 - cleanup resources", "ERROR")
        ct.config.pop("lock", None)
        if restart and was_running:
            _log(task, "start container on source node")
            await sim.container_started(ct)
        raise
    # final cleanup: 'pct unlock' on the target, then start it there in restart mode
    ct.config.pop("lock", None)
    if restart and was_running:
        _log(task, "start container on target node")
        await sim.pause("vzstart")
        await sim.container_started(ct)


def _target_storage(spec: str, source: str) -> str:
    """``target-storage``: one storage for all, ``1`` for the same, or ``src:dst`` pairs."""
    if not spec or spec == "1":
        return source
    mapped = source
    for pair in re.split(r"[,;\s]+", spec.strip()):
        if ":" in pair:
            src, dst = pair.split(":", 1)
            if src == source:
                mapped = dst
        elif pair:
            mapped = pair
    return mapped
