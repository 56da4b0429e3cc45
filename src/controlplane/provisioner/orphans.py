"""Containers in Proxmox that carry our tag but belong to no live tenant.

They appear when a tenant row is removed by hand, or when something outside the control
plane clones with our tag. They are listed for an admin to look at and remove; the control
plane never deletes a container it cannot tie to a tenant on its own.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

from controlplane.db import Database
from controlplane.nodes.registry import ProxmoxRegistry
from controlplane.provisioner.context import StepContext
from controlplane.provisioner.steps import TAG, find_container, stop_container
from controlplane.web.errors import Conflict, NotFound

_MARKER = re.compile(r"controlplane tenant ([0-9a-f-]{36})")

LIVE = "SELECT vmid, id FROM tenants WHERE status <> 'deleted' AND vmid IS NOT NULL"
NODES = "SELECT * FROM nodes WHERE status = 'online' ORDER BY name"


def _tags(entry: dict[str, Any]) -> set[str]:
    return {t for t in re.split(r"[;, ]+", str(entry.get("tags") or "")) if t}


async def find_orphans(db: Database, registry: ProxmoxRegistry) -> list[dict[str, Any]]:
    live = {row["vmid"]: str(row["id"]) for row in await db.fetch_all(LIVE)}
    nodes = await db.fetch_all(NODES)

    async def scan(node: dict[str, Any]) -> list[dict[str, Any]]:
        containers = await registry.client(node).list_containers(node["pve_node"])
        found = []
        for ct in containers:
            if ct.get("template") or TAG not in _tags(ct):
                continue
            vmid = int(ct["vmid"])
            if vmid not in live:
                found.append(
                    {
                        "node_id": node["id"],
                        "node": node["name"],
                        "vmid": vmid,
                        "name": ct.get("name"),
                        "status": ct.get("status"),
                        "tags": ct.get("tags"),
                    }
                )
        return found

    results = await asyncio.gather(*(scan(n) for n in nodes), return_exceptions=True)
    orphans: list[dict[str, Any]] = []
    for result in results:
        if isinstance(result, list):
            orphans.extend(result)
    return orphans


async def remove_orphan(ctx: StepContext, node_id: uuid.UUID, vmid: int) -> None:
    node = await ctx.db.fetch_one("SELECT * FROM nodes WHERE id = %(id)s", {"id": node_id})
    if node is None:
        raise NotFound(f"node {node_id} not found")
    live = await ctx.db.fetch_val(
        "SELECT id FROM tenants WHERE vmid = %(v)s AND status <> 'deleted'", {"v": vmid}
    )
    if live is not None:
        raise Conflict(f"VMID {vmid} belongs to live tenant {live}; delete the tenant instead")
    client = ctx.client(node)
    config = await find_container(client, node["pve_node"], vmid)
    if config is None:
        raise NotFound(f"node {node['name']} has no container {vmid}")
    if TAG not in _tags(config):
        raise Conflict(f"container {vmid} does not carry the {TAG!r} tag; not ours to remove")
    await stop_container(ctx, node, vmid)
    upid = await client.delete(node["pve_node"], vmid, purge=True, destroy_unreferenced_disks=True)
    await client.wait_task(upid, timeout=ctx.task_timeout)
