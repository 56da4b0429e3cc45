"""HTTP for `/api/v1/projects`."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Response

from controlplane.deps import AdminDep, AuditDep, DbDep
from controlplane.projects import service, usecases
from controlplane.projects.schemas import ProjectCreate, ProjectPublic, ProjectUpdate
from controlplane.web.errors import error_responses
from controlplane.web.pagination import Page, PageDep

router = APIRouter(prefix="/api/v1/projects", tags=["projects"])


@router.get("", response_model=Page[ProjectPublic], responses=error_responses(401, 403, 422))
async def list_projects(db: DbDep, _: AdminDep, page: PageDep) -> dict[str, Any]:
    return await service.list_projects(db, limit=page.limit, offset=page.offset)


@router.post(
    "",
    status_code=201,
    response_model=ProjectPublic,
    responses=error_responses(400, 401, 403, 409, 422),
)
async def create_project(
    body: ProjectCreate, db: DbDep, actor: AdminDep, audit: AuditDep, response: Response
) -> dict[str, Any]:
    row = await usecases.create_project(db, audit.context(actor), body)
    response.headers["Location"] = f"/api/v1/projects/{row['id']}"
    return row


@router.get(
    "/{project_id}", response_model=ProjectPublic, responses=error_responses(401, 403, 404, 422)
)
async def get_project(project_id: UUID, db: DbDep, _: AdminDep) -> dict[str, Any]:
    return await service.get_project(db, project_id)


@router.put(
    "/{project_id}",
    response_model=ProjectPublic,
    responses=error_responses(400, 401, 403, 404, 409, 422),
)
async def update_project(
    project_id: UUID, body: ProjectUpdate, db: DbDep, actor: AdminDep, audit: AuditDep
) -> dict[str, Any]:
    return await usecases.update_project(db, audit.context(actor), project_id, body)


@router.delete("/{project_id}", status_code=204, responses=error_responses(401, 403, 404, 409, 422))
async def delete_project(project_id: UUID, db: DbDep, actor: AdminDep, audit: AuditDep) -> Response:
    await usecases.delete_project(db, audit.context(actor), project_id)
    return Response(status_code=204)
