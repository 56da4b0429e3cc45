"""Placement under a burst on several nodes sharing one VMID range (migration 0021).

VMIDs are one namespace for the cluster and nodes' ranges usually overlap. Before 0021,
creators on different nodes picked the same lowest free VMID at once and retried on the
unique index only five times, so under a steady burst a create could be refused ("no room
... or no free VMID") with room and VMIDs to spare (found by the scale suite's chaos batch).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import psycopg
from psycopg.rows import dict_row

from controlplane.tenants.service import _Q
from tests.api.test_tenants import _online_node, _project
from tests.conftest import SimHandle

NODES, PLACERS, EACH, RAM = 5, 10, 12, 256


async def test_burst_on_nodes_sharing_a_range_places_every_tenant(
    admin: httpx.AsyncClient, app: Any, pve_sim: SimHandle
) -> None:
    db = app.state.cp.db
    projects = []
    for i in range(NODES):  # one template per node, so each placer's node is fixed
        await _online_node(admin, app, pve_sim, name=f"n{i}", ram=1_000_000, templates=(9100 + i,))
        projects.append(await _project(admin, name=f"P{i}", slug=f"p{i}", template_vmid=9100 + i))
    url = app.state.cp.settings.database_url

    async def placer(k: int) -> list[dict[str, Any] | None]:
        placed = []
        async with await psycopg.AsyncConnection.connect(
            url, autocommit=True, row_factory=dict_row
        ) as conn:
            for j in range(EACH):
                project = projects[(k + j) % NODES]
                cur = await conn.execute(
                    _Q["tenant_place"],
                    {
                        "id": uuid.uuid4(),
                        "name": f"t{k}x{j}",
                        "subdomain": f"t{k}x{j}",
                        "project_id": project["id"],
                        "owner_user_id": None,
                        "node_id": None,
                        "template": project["template_vmid"],
                        "ram": RAM,
                        "cores": 1,
                    },
                )
                placed.append(await cur.fetchone())
        return placed

    results = [row for rows in await asyncio.gather(*map(placer, range(PLACERS))) for row in rows]
    assert all(row is not None for row in results), "a create was refused with room to spare"
    vmids = [row["vmid"] for row in results if row is not None]
    assert len(set(vmids)) == PLACERS * EACH
    assert sorted(vmids) == list(range(10000, 10000 + PLACERS * EACH))  # lowest free, no gaps
    ledger = await db.fetch_all(
        "SELECT n.allocated_ram_mb, count(t.id) AS n FROM nodes n"
        " LEFT JOIN tenants t ON t.node_id = n.id GROUP BY n.id"
    )
    assert all(r["allocated_ram_mb"] == r["n"] * RAM for r in ledger)
