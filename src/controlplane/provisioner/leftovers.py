"""What a deleted tenant leaves behind besides its container: snapshot rows and backups.

Its snapshots went with the container. Its backups are deleted with it, or kept for the
project's `keep_backups_days` and then deleted by the backup scheduler's sweep; either way
each archive is removed before its row, so no archive is ever left without one.
"""

from __future__ import annotations

import logging
from typing import Any

from controlplane.provisioner.context import Q, StepContext

log = logging.getLogger(__name__)


def backup_notes(backup_id: Any) -> str:
    """What vzdump's `notes-template` writes on a backup's archive: found again by it."""
    return f"controlplane backup {backup_id}"


async def find_archive(
    ctx: StepContext, node: dict[str, Any], storage: str, vmid: int, backup_id: Any
) -> dict[str, Any] | None:
    items = await ctx.client(node).storage_content(
        node["pve_node"], storage, content="backup", vmid=vmid
    )
    wanted = backup_notes(backup_id)
    return next((item for item in items if wanted in str(item.get("notes") or "")), None)


async def delete_archive(ctx: StepContext, backup: dict[str, Any], vmid: int | None) -> None:
    """Remove a backup's archive; one that is gone already is no error (nor for Proxmox)."""
    if backup.get("node_id") is None:
        log.warning("a backup's node was removed: its archive cannot be deleted from here",
                    extra={"backup": str(backup["id"]), "volid": backup.get("volid")})  # fmt: skip
        return
    node = await ctx.node(backup["node_id"])
    volid = backup.get("volid")
    if volid is None:
        if vmid is None:
            return
        found = await find_archive(ctx, node, backup["storage"], vmid, backup["id"])
        if found is None:
            return  # its vzdump never wrote one
        volid = found["volid"]
    upid = await ctx.client(node).delete_volume(node["pve_node"], backup["storage"], volid)
    await ctx.wait(node, "imgdel", upid)


async def release_leftovers(ctx: StepContext, tenant: dict[str, Any]) -> None:
    """The deprovision step after the container is gone."""
    await ctx.db.execute(Q["forget_snapshots"], {"id": tenant["id"]})
    await ctx.db.execute(Q["forget_schedule"], {"id": tenant["id"]})
    days = int(tenant.get("keep_backups_days") or 0)
    if days > 0:
        await ctx.db.execute(Q["expire_backups"], {"id": tenant["id"], "days": days})
        return
    for backup in await ctx.db.fetch_all(Q["backups_of_tenant"], {"id": tenant["id"]}):
        await delete_archive(ctx, backup, tenant.get("vmid"))
        await ctx.db.execute(Q["forget_backup"], {"id": backup["id"]})
