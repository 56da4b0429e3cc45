"""Keeps each node's status, memory, CPU, uptime, version and templates fresh.

Every replica runs the loop, but a node is polled by one of them per period (claimed by a
compare-and-swap on `polled_at`). A node goes `offline` after `OFFLINE_AFTER` failures in a
row and back `online` at its first good answer; `last_error` says what went wrong.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from controlplane.db import Database, load_queries
from controlplane.nodes.registry import ProxmoxRegistry
from controlplane.nodes.verifier import templates_of
from controlplane.proxmox import ProxmoxTLSError

log = logging.getLogger(__name__)
_Q = load_queries("controlplane.nodes")
OFFLINE_AFTER = 3


async def poll_node(db: Database, registry: ProxmoxRegistry, node: dict[str, Any]) -> None:
    try:
        client = registry.client(node)  # a row whose secret cannot be opened fails here
        version = await client.version()
        status = await client.node_status(node["pve_node"])
        containers = await client.list_containers(node["pve_node"])
    except Exception as exc:
        params = {
            "id": node["id"],
            "error": f"{type(exc).__name__}: {exc}"[:500],
            "offline_after": OFFLINE_AFTER,
        }
        presented = exc.presented if isinstance(exc, ProxmoxTLSError) else None
        if presented is not None and presented != node.get("presented_fingerprint"):
            log.error(
                "node certificate changed: not talking to it until the new one is accepted",
                extra={"node": node["name"], "presented": presented},
            )
        if presented is not None:
            row = await db.fetch_one(
                _Q["node_certificate_changed"], {**params, "presented": presented}
            )
        else:
            row = await db.fetch_one(_Q["node_poll_failed"], params)
        log.warning(
            "node poll failed",
            extra={"node": node["name"], "error": str(exc), "status": row and row["status"]},
        )
        return
    memory = status.get("memory") or {}
    await db.execute(
        _Q["node_poll_ok"],
        {
            "id": node["id"],
            "pve_version": str(version.get("version") or "") or None,
            "mem_used_mb": int(memory.get("used", 0)) // (1024 * 1024),
            "cpu": float(status.get("cpu") or 0.0),
            "cpu_count": _cpu_count(status),
            "uptime_s": int(status.get("uptime") or 0),
            "templates": templates_of(containers),
            "fill_total": False,
            "total_ram_mb": None,
        },
    )


def _cpu_count(status: dict[str, Any]) -> int | None:
    cpus = (status.get("cpuinfo") or {}).get("cpus")
    return int(cpus) if isinstance(cpus, int) and cpus > 0 else None


async def poll_due_nodes(db: Database, registry: ProxmoxRegistry, period: float) -> int:
    nodes = await db.fetch_all(_Q["node_claim_poll"], {"period": period})
    await asyncio.gather(*(poll_node(db, registry, node) for node in nodes))
    return len(nodes)
