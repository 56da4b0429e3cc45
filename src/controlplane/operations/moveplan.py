"""How a move crosses to its target: a restart migration, or backup and restore.

Proxmox migrates a container on shared storage by moving its config, and copies a disk on
local storage of the types pve-container's `Migrate.pm` can copy (`dir`, `lvm`, `lvmthin`,
`zfspool`, `btrfs`). It refuses other types (`storage type '<type>' not supported`), a
linked clone whose volume names its base image (`clone of '<base>'`: `dir` and `zfspool`
linked clones) and local snapshots except on `zfspool` (`non-migratable snapshot exists`).
What it refuses moves by backup and restore instead: an archive on a storage both nodes
share, the source destroyed (VMIDs are one namespace for the cluster, so the restore of the
same VMID on the target is refused while the source's config exists), the archive restored
on the target. Snapshots do not survive that, so a container with local snapshots moves
that way only when asked to.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

import httpx

from controlplane.db import Executor, load_queries
from controlplane.errors import Conflict
from controlplane.nodes.registry import ProxmoxRegistry
from controlplane.operations import service
from controlplane.proxmox import ProxmoxClient
from controlplane.proxmox.errors import ProxmoxError

log = logging.getLogger(__name__)
_NODES = load_queries("controlplane.provisioner")

MIGRATABLE_TYPES = frozenset({"dir", "lvm", "lvmthin", "zfspool", "btrfs"})
METHODS = ("auto", "migrate", "backup_restore")
_BASE = re.compile(r"^(?:\d+/)?(base-\d+-disk-\d+[^/]*)/")


def linked_base(volname: str) -> str | None:
    """The base image a linked clone's volume name carries (zfspool `base-9000-disk-0/
    subvol-101-disk-0`, dir `9000/base-9000-disk-0.raw/101/vm-101-disk-0.raw`), if any."""
    m = _BASE.match(volname)
    return m.group(1) if m else None


def _usable(entry: dict[str, Any]) -> bool:
    return bool(entry.get("enabled", True)) and bool(entry.get("active", True))


async def plan_move(
    source: ProxmoxClient,
    source_pve: str,
    target: ProxmoxClient,
    target_pve: str,
    vmid: int,
    *,
    wanted: str = "auto",
    backup_storage: str | None = None,
) -> dict[str, Any]:
    """Which method, and for backup and restore which storages; a `Conflict` (409) when
    the move cannot be done the way asked (or at all), saying why."""
    config = await source.get_config(source_pve, vmid)
    volid = str(config.get("rootfs", "")).split(",", 1)[0]
    sid, _, volname = volid.partition(":")
    storages = {s["storage"]: s for s in await source.storages(source_pve)}
    disk = storages.get(sid, {})
    reason: str | None = None
    snapshots = 0
    if not disk.get("shared"):
        kind = str(disk.get("type") or "unknown")
        base = linked_base(volname)
        if kind not in MIGRATABLE_TYPES:
            reason = f"its disk is on {kind} storage '{sid}', which Proxmox cannot migrate"
        elif base is not None:
            reason = f"its disk is a linked clone of '{base}' on local storage '{sid}'"
        elif kind != "zfspool":
            snaps = [s for s in await source.list_snapshots(source_pve, vmid)
                     if s.get("name") != "current"]  # fmt: skip
            snapshots = len(snaps)
            if snapshots:
                if wanted != "backup_restore":
                    raise Conflict(
                        f"the container has {snapshots} snapshot(s) on local storage '{sid}', "
                        "which Proxmox cannot migrate: delete them, or ask for method "
                        "backup_restore (the snapshots do not survive it)",
                        field="method",
                    )
                reason = f"it has snapshots on local storage '{sid}'"
    if wanted == "migrate" and reason is not None:
        raise Conflict(
            f"the container cannot be migrated: {reason}; ask for method backup_restore",
            field="method",
        )
    method = "migrate" if wanted == "migrate" or (wanted == "auto" and reason is None) else (
        "backup_restore"
    )  # fmt: skip
    plan: dict[str, Any] = {"method": method, "why": reason, "source_storage": sid}
    if method == "migrate":
        return plan
    on_source = {s["storage"] for s in await source.storages(source_pve, content="backup")
                 if s.get("shared") and _usable(s)}  # fmt: skip
    on_target = {s["storage"] for s in await target.storages(target_pve, content="backup")
                 if s.get("shared") and _usable(s)}  # fmt: skip
    shared = sorted(on_source & on_target)
    if not shared:
        raise Conflict(
            f"no storage for backups is shared by nodes {source_pve} and {target_pve}, and a "
            f"move by backup and restore needs one ({reason or 'as asked'})",
            field="node_id",
        )
    disks = [s["storage"] for s in await target.storages(target_pve, content="rootdir")
             if _usable(s)]  # fmt: skip
    if not disks:
        raise Conflict(f"node {target_pve} has no storage for containers", field="node_id")
    plan["backup_storage"] = backup_storage if backup_storage in shared else shared[0]
    plan["target_storage"] = sid if sid in disks else disks[0]
    return plan


async def plan_request(
    db: Executor, registry: ProxmoxRegistry, tenant_id: uuid.UUID, node_id: uuid.UUID, wanted: str
) -> dict[str, Any] | None:
    """The plan of a requested move, so a move that cannot be done is a 409 now. None when
    there is nothing to look at yet (the use case refuses the request itself: an unknown or
    the same node, an offline one) or the nodes cannot be reached now (the move's first
    step decides then)."""
    tenant = await service.tenant_for_operation(db, tenant_id, owner_user_id=None)
    source = await db.fetch_one(_NODES["node_of"], {"id": tenant["node_id"]})
    target = await db.fetch_one(_NODES["node_of"], {"id": node_id})
    if source is None or target is None or tenant.get("vmid") is None or source["id"] == node_id:
        return None
    if target["status"] != "online":
        return None
    try:
        return await plan_move(
            registry.client(source),
            source["pve_node"],
            registry.client(target),
            target["pve_node"],
            int(tenant["vmid"]),
            wanted=wanted,
            backup_storage=tenant.get("backup_storage"),
        )
    except (ProxmoxError, httpx.HTTPError) as exc:
        log.info("move: the nodes cannot be asked now", extra={"error": str(exc)})
        return None
