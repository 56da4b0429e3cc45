"""Read-only queries the pages show (counts, names, audit pages); no rules live here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from controlplane.db import Database, load_queries

_Q = load_queries("controlplane.admin")
# The audit log has no service module; its own named query serves the API and this page.
_AUDIT = load_queries("controlplane.audit")


async def audit_page(
    db: Database,
    *,
    actor: str | None = None,
    action: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> dict[str, Any]:
    row = await db.fetch_one(
        _AUDIT["audit_page"],
        {
            "actor": actor,
            "action": action,
            "target_type": target_type,
            "target_id": target_id,
            "since": since,
            "until": until,
            "limit": limit,
            "offset": offset,
        },
    )
    assert row is not None
    return {"items": row["items"], "total": row["total"], "limit": limit, "offset": offset}


async def admin_names(db: Database) -> dict[str, str]:
    """Audit actor ("admin:<id>") -> the admin's name, for display."""
    return {row["actor"]: row["name"] for row in await db.fetch_all(_Q["admin_names"])}


async def tenant_counts(db: Database) -> dict[str, int]:
    return {row["status"]: row["n"] for row in await db.fetch_all(_Q["overview_tenant_counts"])}


async def nodes_overview(db: Database) -> list[dict[str, Any]]:
    return await db.fetch_all(_Q["overview_nodes"])


async def node_names(db: Database) -> list[dict[str, Any]]:
    return await db.fetch_all(_Q["node_names"])


async def project_names(db: Database) -> list[dict[str, Any]]:
    return await db.fetch_all(_Q["project_names"])


async def live_tenants_per_node(db: Database) -> dict[Any, int]:
    return {row["node_id"]: row["n"] for row in await db.fetch_all(_Q["node_live_tenant_counts"])}


async def live_tenants_per_project(db: Database) -> dict[Any, int]:
    rows = await db.fetch_all(_Q["project_live_tenant_counts"])
    return {row["project_id"]: row["n"] for row in rows}
