"""Response bodies for a project's warm pool (`/api/v1/projects/{id}/spares`)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field


class SparePublic(BaseModel):
    id: UUID
    node_id: UUID
    node: str
    vmid: int
    template_vmid: int
    status: Literal["cloning", "ready", "retiring"] = Field(
        description="cloning: being built; ready: the next create on its node takes it; "
        "retiring: being destroyed (template changed, pool shrunk)"
    )
    step: str | None
    attempts: int
    last_error: str | None
    created_at: datetime
    ready_at: datetime | None


class SparePool(BaseModel):
    """A project's spares on every node, and how many there are of each status."""

    project_id: UUID
    warm_pool_size: int = Field(description="Spares wanted per node that may hold them")
    ready: int
    building: int
    retiring: int
    items: list[SparePublic]
