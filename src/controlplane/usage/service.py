"""Reading usage history: from PostgreSQL only, never from Proxmox."""

from __future__ import annotations

import uuid
from typing import Any

from controlplane.db import Executor, load_queries
from controlplane.nodes import service as nodes
from controlplane.tenants import service as tenants
from controlplane.usage.archives import ARCHIVES

_Q = load_queries("controlplane.usage")


async def _series(db: Executor, kind: str, subject_id: uuid.UUID, timeframe: str) -> dict[str, Any]:
    archive = ARCHIVES[timeframe]
    params = {"id": subject_id, "timeframe": timeframe, "keep": archive.span_s}
    series = _Q["tenant_usage_series"] if kind == "tenant" else _Q["node_usage_series"]
    points = await db.fetch_all(series, params)
    source = await db.fetch_one(_Q["usage_source_get"], {"kind": kind, "id": subject_id})
    return {
        "timeframe": timeframe,
        "step_s": archive.step_s,
        "read_at": source and source[f"{timeframe}_at"],
        "points": points,
    }


async def tenant_usage(
    db: Executor, tenant_id: uuid.UUID, timeframe: str, *, owner_user_id: uuid.UUID | None = None
) -> dict[str, Any]:
    """A tenant's archive; someone else's tenant is a NotFound, like one that is not there.
    A tenant not yet (or no longer) collected has no points."""
    await tenants.get_tenant(db, tenant_id, owner_user_id=owner_user_id)
    return await _series(db, "tenant", tenant_id, timeframe)


async def node_usage(db: Executor, node_id: uuid.UUID, timeframe: str) -> dict[str, Any]:
    await nodes.get_node(db, node_id)
    return await _series(db, "node", node_id, timeframe)
