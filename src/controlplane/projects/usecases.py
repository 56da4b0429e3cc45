"""The project use cases the admin API and the dashboard share, each with its audit entry."""

from __future__ import annotations

import uuid
from typing import Any

from controlplane.audit.context import AuditContext
from controlplane.db import Executor
from controlplane.projects import service
from controlplane.projects.schemas import ProjectCreate, ProjectUpdate


async def create_project(db: Executor, audit: AuditContext, data: ProjectCreate) -> dict[str, Any]:
    row = await service.create_project(db, data)
    audit.record("project.create", "project", row["id"], data.model_dump())
    return row


async def update_project(
    db: Executor, audit: AuditContext, project_id: uuid.UUID, data: ProjectUpdate
) -> dict[str, Any]:
    """Change what `data` sets; the entry lists exactly that."""
    row = await service.update_project(db, project_id, data)
    audit.record("project.update", "project", project_id, data.model_dump(exclude_unset=True))
    return row


async def delete_project(db: Executor, audit: AuditContext, project_id: uuid.UUID) -> None:
    await service.delete_project(db, project_id)
    audit.record("project.delete", "project", project_id)
