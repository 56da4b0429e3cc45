"""Reads of the warm pool for the admin API and the dashboard."""

from __future__ import annotations

import uuid
from typing import Any

from controlplane.db import Executor, load_queries
from controlplane.projects import service as projects

_Q = load_queries("controlplane.warmpool")


async def project_pool(db: Executor, project_id: uuid.UUID) -> dict[str, Any]:
    """The project's spares (404 for an unknown project)."""
    project = await projects.get_project(db, project_id)
    items = await db.fetch_all(_Q["spare_list"], {"project_id": project_id})
    counts = await db.fetch_one(_Q["spare_counts_by_project"], {"project_id": project_id})
    assert counts is not None
    return {
        "project_id": project_id,
        "warm_pool_size": project["warm_pool_size"],
        **counts,
        "items": items,
    }
