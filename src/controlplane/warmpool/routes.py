"""HTTP for a project's warm pool: what spares it has, on which nodes, in which state."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter

from controlplane.deps import AdminDep, DbDep
from controlplane.warmpool import service
from controlplane.warmpool.schemas import SparePool
from controlplane.web.errors import error_responses

router = APIRouter(prefix="/api/v1/projects", tags=["projects"])


@router.get(
    "/{project_id}/spares",
    response_model=SparePool,
    responses=error_responses(401, 403, 404, 422),
)
async def project_spares(project_id: UUID, db: DbDep, _: AdminDep) -> dict[str, Any]:
    return await service.project_pool(db, project_id)
