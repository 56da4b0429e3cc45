"""Backups and restore: ``vzdump``, the storage listing and content, deleting a volume,
and ``POST /nodes/{node}/lxc`` with ``restore=1`` (docs/proxmox-reference.md section 14).

vzdump checks little before it forks (root-only options, conflicting options, the node);
the storage is checked in the task (``could not get storage information for ...``) and
each guest's problems (a lock, a missing config) are logged as ``ERROR: Backup of VM
<id> failed - ...`` and end the task with ``job errors``. One vzdump runs at a time per
node (its global lock); a second one waits. The guest is locked ``backup`` while its
archive is written, which is what other calls then meet (``CT is locked (backup)``).
"""

from __future__ import annotations

import asyncio
import copy
import re
import time
from typing import Any

from .auth import Token
from .errors import PveError, fail, locked, param_error
from .models import Container, Task
from .propstr import LIST_SPLIT, disk_size_bytes, normalize_net, parse_property_string
from .simulator import Simulator, TaskFailed
from .storage import BackupVolume, Storage, archive_format, backup_volid, volume_name

_ROOT_ONLY = ("maxfiles", "prune-backups", "tmpdir", "dumpdir", "script", "bwlimit", "ionice")
_BACKUP_VOLID = re.compile(
    r"^(?P<storage>[a-z][a-z0-9\-_.]*[a-z0-9]):backup/vzdump-(?P<type>lxc|qemu)-"
    r"(?P<vmid>\d+)-\d{4}_\d{2}_\d{2}-\d{2}_\d{2}_\d{2}\.(?P<format>tar(?:\.(?:zst|gz|lzo))?)$",
    re.IGNORECASE,
)
_NOT_RESTORED = {"lock", "digest"}


def storage_config(sim: Simulator, storage: str) -> Storage:
    """PVE::Storage::storage_config: the storage or ``storage 'x' does not exist``."""
    found = sim.storages.get(storage)
    if found is None:
        raise fail(f"storage '{storage}' does not exist")
    return found


def _scope(store: Storage, node: str) -> str:
    return "" if store.shared else node


def _used(sim: Simulator, store: Storage, node: str) -> int:
    if "backup" in store.content:
        scope = _scope(store, node)
        return sum(b.size for (n, _), b in sim.backups.items()
                   if n == scope and b.storage == store.storage)  # fmt: skip
    return sum(disk_size_bytes(str(c.config.get("rootfs", ""))) for c in sim.containers.values()
               if str(c.config.get("rootfs", "")).startswith(f"{store.storage}:"))  # fmt: skip


# -- GET /nodes/{node}/storage ---------------------------------------------------------


def storage_index(sim: Simulator, token: Token, p: dict[str, Any]) -> Any:
    wanted = {c for c in LIST_SPLIT.split(str(p.get("content", ""))) if c}
    out = []
    for store in sorted(sim.storages.values(), key=lambda s: s.storage):
        if p.get("storage") and store.storage != p["storage"]:
            continue
        if wanted and not wanted & store.content:
            continue
        if not (token.has(f"/storage/{store.storage}", "Datastore.Audit")
                or token.has(f"/storage/{store.storage}", "Datastore.AllocateSpace")):  # fmt: skip
            continue  # filtered, not refused
        used = _used(sim, store, p["node"])
        out.append(
            {
                "storage": store.storage,
                "type": store.type,
                "content": store.content_list,
                "shared": int(store.shared),
                "active": 1,
                "enabled": 1,
                "total": store.total,
                "used": used,
                "avail": store.total - used,
                "used_fraction": used / store.total,
            }
        )
    return out


# -- GET/DELETE /nodes/{node}/storage/{storage}/content[/{volume}] ----------------------


def storage_content(sim: Simulator, token: Token, p: dict[str, Any]) -> Any:
    node, store = p["node"], storage_config(sim, p["storage"])
    content, vmid = p.get("content"), p.get("vmid")
    items: list[dict[str, Any]] = []
    if "backup" in store.content and content in (None, "backup"):
        scope = _scope(store, node)
        backups = [b for (n, _), b in sim.backups.items()
                   if n == scope and b.storage == store.storage]  # fmt: skip
        items += [b.entry() for b in sorted(backups, key=lambda b: b.volid)
                  if vmid is None or b.vmid == vmid]  # fmt: skip
    if "rootdir" in store.content and content in (None, "rootdir", "images"):
        for ct in sorted(sim.containers.values(), key=lambda c: c.vmid):
            volume = str(ct.config.get("rootfs", ""))
            if not volume.startswith(f"{store.storage}:") or (vmid is not None and ct.vmid != vmid):
                continue
            if not store.shared and ct.node != node:
                continue
            items.append(
                {
                    "volid": volume.split(",")[0],
                    "content": "rootdir",
                    "format": "raw",
                    "size": disk_size_bytes(volume),
                    "vmid": ct.vmid,
                }
            )
    return items


def _backup_on(sim: Simulator, node: str, volid: str) -> BackupVolume | None:
    m = _BACKUP_VOLID.match(volid)
    if m is None:
        return None
    store = sim.storages.get(m["storage"])
    if store is None:
        return None
    return sim.backups.get((_scope(store, node), volid))


def delete_volume(sim: Simulator, token: Token, p: dict[str, Any]) -> Any:
    node, volume = p["node"], p["volume"]
    storage = p.get("storage")
    if ":" in volume:
        sid = volume.split(":", 1)[0]
        if storage and sid != storage:
            raise param_error({"volume": f"storage ID mismatch ({sid} != {storage})\n"})
        volid = volume
    else:
        if not storage:
            raise param_error({"volume": "no storage specified - incomplete volume ID"})
        sid, volid = storage, f"{storage}:{volume}"
    store = storage_config(sim, sid)
    m = _BACKUP_VOLID.match(volid)
    if m is not None:
        token.check(f"/storage/{sid}", ["Datastore.AllocateSpace"])
        token.check(f"/vms/{int(m['vmid'])}", ["VM.Backup"])
        owner: int | None = int(m["vmid"])
    else:
        token.check(f"/storage/{sid}", ["Datastore.Allocate"])
        owner = None
    key = (_scope(store, node), volid)
    path = f"{store.path or '/mnt/pve/' + sid}/dump/{volid.split('/', 1)[-1]}"

    async def body(task: Task) -> None:
        await sim.pause("imgdel")
        backup = sim.backups.get(key)
        if backup is not None and backup.protected:
            raise TaskFailed(f"cannot remove protected archive '{path}'")
        if task.inject_failure:
            raise TaskFailed(f"removing archive {path} failed: Input/output error")
        sim.backups.pop(key, None)  # a missing archive is not an error (ENOENT is fine)
        task.log.append(f"Removed volume '{volid}'")

    task_id = (f"{owner}@" if owner is not None else "") + sid
    return sim.start_task(node, "imgdel", task_id, token, body).upid


# -- POST /nodes/{node}/vzdump -----------------------------------------------------------


def _vmids(value: str) -> list[int]:
    return [int(v) for v in LIST_SPLIT.split(value.strip()) if v]


def _notes(template: str, ct: Container, node: str) -> str:
    values = {"guestname": ct.hostname, "vmid": str(ct.vmid), "node": node, "cluster": "pvesim"}
    return re.sub(r"\{\{(\w+)\}\}", lambda m: values.get(m[1], m[0]), template)


def vzdump(sim: Simulator, token: Token, p: dict[str, Any]) -> Any:
    node = p["node"]
    if p.get("stdout"):
        raise param_error({"stdout": "option is only allowed on the command line interface."})
    for key in _ROOT_ONLY:
        if key in p and token.user != "root@pam":
            raise param_error({key: "Only root may set this option."})
    if p.get("all") and p.get("vmid"):
        raise param_error({"all": "option conflicts with option 'vmid'"})
    if p.get("exclude") and p.get("vmid"):
        raise param_error({"exclude": "option conflicts with option 'vmid'"})
    if p.get("pool") and p.get("vmid"):
        raise param_error({"pool": "option conflicts with option 'vmid'"})
    if "prune-backups" in p and "maxfiles" in p:
        raise param_error({"prune-backups": "option conflicts with option 'maxfiles'"})
    if "\n" in str(p.get("notes-template", "")):
        raise param_error({"notes-template": "contains a line feed"})
    if p.get("pool"):
        raise fail("pvesim: backup by pool is not simulated")
    if not (p.get("all") or p.get("exclude") or p.get("vmid") or p.get("stop")):
        raise param_error({"vmid": "property is missing"})
    if p.get("stop"):
        for task in sim.tasks.values():
            if task.type == "vzdump" and task.node == node and task.status == "running":
                sim.cancel_task(task.upid)
        if not p.get("vmid") and not p.get("all"):
            return "OK"
    if p.get("all") or p.get("exclude"):
        excluded = set(_vmids(str(p.get("exclude", ""))))
        local = sorted(v for v, c in sim.containers.items() if c.node == node and v not in excluded)
    else:
        wanted = _vmids(str(p["vmid"]))
        # guests on other nodes are skipped; unknown ones are kept and "visibly fail later"
        local = [v for v in wanted if v not in sim.containers or sim.containers[v].node == node]
        if not local:
            return "OK"  # PVE: "silent exit if specified VMs run on other nodes"
    if p.get("storage"):
        token.check(f"/storage/{p['storage']}", ["Datastore.AllocateSpace"])
    storage = str(p.get("storage") or "local")
    mode = str(p.get("mode", "snapshot"))
    compress = str(p.get("compress", "0"))

    async def body(task: Task) -> None:
        lock = sim.job_locks.setdefault(node, asyncio.Lock())
        if lock.locked():
            task.log.append("INFO: trying to get global lock - waiting...")
        async with lock:
            if task.log:
                task.log.append("INFO: got global lock")
            await _run_backup_job(sim, task, node, local, storage, mode, compress, p)

    task_id = str(local[0]) if len(local) == 1 else ""
    return sim.start_task(node, "vzdump", task_id, token, body).upid


async def _run_backup_job(
    sim: Simulator,
    task: Task,
    node: str,
    vmids: list[int],
    storage: str,
    mode: str,
    compress: str,
    p: dict[str, Any],
) -> None:
    store = sim.storages.get(storage)
    if store is None:
        raise TaskFailed(
            f"could not get storage information for '{storage}': storage '{storage}' does not exist"
        )
    if "backup" not in store.content:
        raise TaskFailed(
            f"could not get storage information for '{storage}': can't use storage "
            f"'{storage}' for backups - wrong content type"
        )
    task.log.append(
        f"INFO: starting new backup job: vzdump {' '.join(map(str, vmids))} --storage {storage} "
        f"--mode {mode} --compress {compress}"
    )
    errors = 0
    for vmid in vmids:
        task.log.append(f"INFO: Starting Backup of VM {vmid} (lxc)")
        try:
            await _backup_one(sim, task, node, vmid, store, mode, compress, p)
        except TaskFailed as exc:
            errors += 1
            task.log.append(f"ERROR: Backup of VM {vmid} failed - {exc}")
        else:
            task.log.append(f"INFO: Finished Backup of VM {vmid} (00:00:01)")
    if errors:
        task.log.append("INFO: Backup job finished with errors")
        raise TaskFailed("job errors")
    task.log.append("INFO: Backup job finished successfully")


async def _backup_one(
    sim: Simulator,
    task: Task,
    node: str,
    vmid: int,
    store: Storage,
    mode: str,
    compress: str,
    p: dict[str, Any],
) -> None:
    ct = sim.containers.get(vmid)
    if ct is None or ct.node != node:
        raise TaskFailed(f"Configuration file 'nodes/{node}/lxc/{vmid}.conf' does not exist")
    if ct.lock:
        raise TaskFailed(f"CT is locked ({ct.lock})")  # set_lock('backup') checks first
    ct.config["lock"] = "backup"
    was_running = ct.running
    try:
        task.log.append(f"INFO: CT Name: {ct.hostname}")
        task.log.append(f"INFO: backup mode: {mode}")
        if mode == "stop" and was_running:
            task.log.append("INFO: stopping virtual guest")
            await sim.container_stopped(ct)
        config = {k: copy.deepcopy(v) for k, v in ct.config.items() if k not in _NOT_RESTORED}
        disk = disk_size_bytes(str(ct.config.get("rootfs", "")))
        await sim.pause_for_disk("vzdump", disk)
        if task.inject_failure:
            raise TaskFailed(
                "command 'lxc-usernsexec -m u:0:100000:65536 -m g:0:100000:65536 -- tar cpf - "
                "--totals --one-file-system ...' failed: exit code 2"
            )
        fmt = archive_format(compress)
        when = time.time()
        scope = _scope(store, node)
        volid = backup_volid(store.storage, vmid, when, fmt)
        while (scope, volid) in sim.backups:  # one per second and guest, as file names go
            when += 1
            volid = backup_volid(store.storage, vmid, when, fmt)
        notes = _notes(str(p["notes-template"]), ct, node) if p.get("notes-template") else None
        sim.backups[(scope, volid)] = BackupVolume(
            volid=volid,
            storage=store.storage,
            node=None if store.shared else node,
            vmid=vmid,
            ctime=int(when),
            size=max(disk // 25, 1),
            format=fmt,
            config=config,
            notes=notes,
            protected=bool(p.get("protected")),
            disk_bytes=disk,
        )
        task.log.append(f"INFO: creating vzdump archive '{volid}'")
    finally:
        _release_backup_lock(sim, ct)
        if mode == "stop" and was_running and not ct.running and sim.containers.get(vmid) is ct:
            task.log.append("INFO: restarting vm")
            await sim.container_started(ct)


def _release_backup_lock(sim: Simulator, ct: Container) -> None:
    """The guest's 'backup' lock goes at the end; the stuck-lock fault keeps it a while, as
    after a vzdump that was killed (only ``pct unlock`` clears those on a real node)."""

    def release() -> None:
        if ct.config.get("lock") == "backup":
            ct.config.pop("lock", None)

    if sim.faults.stuck_lock_seconds > 0:
        sim.later(sim.faults.stuck_lock_seconds, release)
    else:
        release()


# -- POST /nodes/{node}/lxc (restore) ----------------------------------------------------


def create(sim: Simulator, token: Token, p: dict[str, Any]) -> Any:
    node, vmid = p["node"], p["vmid"]
    restore, force = bool(p.get("restore")), bool(p.get("force"))
    if not restore:
        raise fail("pvesim: only restore (restore=1) is simulated for POST /nodes/{node}/lxc")
    current = sim.containers.get(vmid)
    same_exists = current is not None and current.node == node
    if not (same_exists and force):
        if current is not None:
            raise fail(f"CT {vmid} already exists on node '{current.node}'")
    else:
        assert current is not None
        if current.running:
            raise fail("can't overwrite running container")
        if current.config.get("protection"):
            raise fail(f"unable to restore CT {vmid} - protection mode enabled")
    if not token.has(f"/vms/{vmid}", "VM.Allocate") and not (
        same_exists and force and token.has(f"/vms/{vmid}", "VM.Backup")
    ):
        raise PveError(403, "Permission check failed")
    archive = str(p["ostemplate"])
    sid = archive.split(":", 1)[0] if ":" in archive else ""
    if sid:
        storage_config(sim, sid)
    token.check(f"/storage/{sid}", ["Datastore.AllocateSpace"])
    target = str(p.get("storage") or "local")
    rootfs = p.get("rootfs")
    if rootfs is None:
        store = storage_config(sim, target)
        if "rootdir" not in store.content:
            raise param_error(
                {"storage": f"storage '{target}' does not support container directories"}
            )
        token.check(f"/storage/{target}", ["Datastore.AllocateSpace"])
    if current is not None and same_exists and current.lock:
        raise fail(f"unable to restore CT {vmid} - {locked(current.lock).message}")
    backup = _backup_on(sim, node, archive)
    # create_and_lock_config: the (placeholder) config is locked 'create' at once
    if same_exists:
        assert current is not None
        ct = current
        ct.config["lock"] = "create"
    else:
        ct = Container(vmid=vmid, node=node, config={"lock": "create"})
        sim.containers[vmid] = ct
    given = {k: v for k, v in p.items() if k not in _CREATE_CONTROL}

    async def body(task: Task) -> None:
        if ct.running:
            raise TaskFailed(f"unable to restore CT {vmid} - can't overwrite running container")
        if backup is None:
            _undo(sim, ct, same_exists)
            raise TaskFailed(
                f"unable to restore CT {vmid} - pvesim: no backup archive '{archive}' on "
                f"node '{node}'"
            )
        task.log.append(f"recovering backed-up configuration from '{archive}'")
        await sim.pause_for_disk("vzrestore", backup.disk_bytes)
        if task.inject_failure:
            # past this point PVE destroys the config on error, even of an existing CT
            if sim.containers.get(vmid) is ct:
                del sim.containers[vmid]
            raise TaskFailed(
                f"unable to restore CT {vmid} - command 'tar xpf - --zstd --totals ...' failed: "
                "exit code 2"
            )
        task.log.append(f"restoring '{archive}' now..")
        config = copy.deepcopy(backup.config)
        was_template = bool(config.pop("template", 0))
        size = next((x for x in str(config.get("rootfs", "")).split(",") if x.startswith("size=")),
                    "size=8G")  # fmt: skip
        config["rootfs"] = str(rootfs) if rootfs is not None else (
            f"{target}:{volume_name(sim.storages.get(target), vmid)},{size}"
        )  # fmt: skip
        task.log.append("merging backed-up and given configuration..")
        for key, value in given.items():
            config[key] = normalize_net(str(value), sim.rng) if key.startswith("net") else value
        if p.get("unique"):
            for key in [k for k in config if re.fullmatch(r"net\d+", k)]:
                net = parse_property_string(str(config[key]))
                net.pop("hwaddr", None)
                config[key] = normalize_net(",".join(f"{k}={v}" for k, v in net.items()), sim.rng)
        config.setdefault("hostname", f"CT{vmid}")
        config.setdefault("memory", 512)
        config.setdefault("swap", 512)
        if was_template:
            config["template"] = 1
        ct.config = config  # written without the lock: the restore is done
        ct.snapshots = {}  # the old volumes (and their snapshots) are gone
        ct.parent = None
        if p.get("start"):
            await sim.pause("vzstart")
            await sim.container_started(ct)

    return sim.start_task(node, "vzrestore", str(vmid), token, body).upid


_CREATE_CONTROL = {
    "node", "vmid", "ostemplate", "restore", "force", "storage", "start", "unique", "rootfs",
    "bwlimit", "ignore-unpack-errors", "password", "ssh-public-keys", "pool",
}  # fmt: skip


def _undo(sim: Simulator, ct: Container, existed: bool) -> None:
    """An abort before the container was changed: only the 'create' lock goes."""
    if existed:
        ct.config.pop("lock", None)
    elif sim.containers.get(ct.vmid) is ct:
        del sim.containers[ct.vmid]
