"""Containers in Proxmox that carry our tag but belong to no live tenant (nor, with the
warm pool's tag, to any spare's row).

They appear when a tenant row is removed by hand, or when something outside the control
plane clones with our tag. They are listed for an admin to look at and remove; the control
plane never deletes a container it cannot tie to a tenant on its own.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from controlplane.db import Database
from controlplane.errors import Conflict, NotFound
from controlplane.nodes.registry import ProxmoxRegistry
from controlplane.provisioner.context import Q, StepContext
from controlplane.provisioner.steps import SPARE_TAG, TAG, find_container, stop_container

log = logging.getLogger(__name__)


@dataclass
class OrphanScan:
    """The orphans found, and the nodes that could not be read (their orphans are unknown)."""

    items: list[dict[str, Any]] = field(default_factory=list)
    unreachable_nodes: list[dict[str, Any]] = field(default_factory=list)


def _tags(entry: dict[str, Any]) -> set[str]:
    return {t for t in re.split(r"[;, ]+", str(entry.get("tags") or "")) if t}


def _unreachable(node: dict[str, Any], reason: str) -> dict[str, Any]:
    return {"node_id": node["id"], "node": node["name"], "reason": reason[:500]}


async def find_orphans(db: Database, registry: ProxmoxRegistry) -> OrphanScan:
    live = {row["vmid"]: str(row["id"]) for row in await db.fetch_all(Q["orphan_live_vmids"])}
    nodes = await db.fetch_all(Q["orphan_nodes"])
    scan = OrphanScan()
    # A node the poller does not see online is not asked (it would only time out), but it
    # is reported: an empty list must never hide a node whose containers nobody read.
    online = []
    for node in nodes:
        if node["status"] == "online":
            online.append(node)
        else:
            last = f" ({node['last_error']})" if node["last_error"] else ""
            scan.unreachable_nodes.append(_unreachable(node, f"node is {node['status']}{last}"))

    async def read(node: dict[str, Any]) -> list[dict[str, Any]]:
        containers = await registry.client(node).list_containers(node["pve_node"])
        found = []
        for ct in containers:
            if ct.get("template") or not _tags(ct) & {TAG, SPARE_TAG}:
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

    results = await asyncio.gather(*(read(n) for n in online), return_exceptions=True)
    for node, result in zip(online, results, strict=True):
        if isinstance(result, list):
            scan.items.extend(result)
        elif isinstance(result, Exception):
            log.warning("orphan scan: node %s unreadable: %s", node["name"], result)
            scan.unreachable_nodes.append(_unreachable(node, f"{type(result).__name__}: {result}"))
        else:
            raise result  # cancellation and the like are not a node's fault
    scan.unreachable_nodes.sort(key=lambda n: n["node"])
    return scan


async def remove_orphan(ctx: StepContext, node_id: uuid.UUID, vmid: int) -> None:
    node = await ctx.db.fetch_one(Q["node_of"], {"id": node_id})
    if node is None:
        raise NotFound(f"node {node_id} not found")
    live = await ctx.db.fetch_val(Q["orphan_owner"], {"vmid": vmid})
    if live is not None:
        raise Conflict(f"VMID {vmid} belongs to live tenant {live}; delete the tenant instead")
    spare = await ctx.db.fetch_val(Q["orphan_spare"], {"vmid": vmid})
    if spare is not None:
        raise Conflict(
            f"VMID {vmid} is spare {spare} of a warm pool; lower the project's warm_pool_size"
        )
    client = ctx.client(node)
    config = await find_container(client, node["pve_node"], vmid)
    if config is None:
        raise NotFound(f"node {node['name']} has no container {vmid}")
    if not _tags(config) & {TAG, SPARE_TAG}:
        raise Conflict(f"container {vmid} does not carry the {TAG!r} tag; not ours to remove")
    await stop_container(ctx, node, vmid)
    upid = await client.delete(node["pve_node"], vmid, purge=True, destroy_unreferenced_disks=True)
    await client.wait_task(upid, timeout=ctx.task_timeout)
