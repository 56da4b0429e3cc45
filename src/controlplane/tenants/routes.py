"""HTTP for `/api/v1/tenants` (admin). Every change returns 202: the workers do the rest."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse

from controlplane.deps import AdminDep, AuditDep, DbDep, SettingsDep
from controlplane.tenants import service, usecases
from controlplane.tenants.schemas import (
    TenantCreate,
    TenantDetail,
    TenantPublic,
    TenantStatus,
    TenantUpdate,
)
from controlplane.web.errors import error_responses
from controlplane.web.pagination import Page, PageDep

router = APIRouter(prefix="/api/v1/tenants", tags=["tenants"])


@router.post(
    "",
    status_code=202,
    response_model=TenantPublic,
    responses=error_responses(400, 401, 403, 404, 409, 422),
)
async def create_tenant(
    body: TenantCreate,
    db: DbDep,
    settings: SettingsDep,
    actor: AdminDep,
    audit: AuditDep,
    response: Response,
) -> dict[str, Any]:
    row = await usecases.create_tenant(db, settings, audit.context(actor), body)
    response.headers["Location"] = f"/api/v1/tenants/{row['id']}"
    return row


@router.get("", response_model=Page[TenantPublic], responses=error_responses(401, 403, 422))
async def list_tenants(
    db: DbDep,
    _: AdminDep,
    page: PageDep,
    status: Annotated[TenantStatus | None, Query()] = None,
    node_id: UUID | None = None,
    project_id: UUID | None = None,
    owner_user_id: UUID | None = None,
    include_deleted: bool = False,
) -> JSONResponse:
    result = await service.list_tenants(
        db,
        status=status,
        node_id=node_id,
        project_id=project_id,
        owner_user_id=owner_user_id,
        include_deleted=include_deleted,
        limit=page.limit,
        offset=page.offset,
    )
    # The page is already JSON of exactly TenantPublic's fields, built by PostgreSQL:
    # returning it as a response skips FastAPI's re-validation of every item (a quarter of
    # this route's CPU; BENCHMARKS.md P2). tests/api/test_tenants.py holds the page to the
    # model and to the detail route's output.
    return JSONResponse(result)


@router.get(
    "/{tenant_id}", response_model=TenantDetail, responses=error_responses(401, 403, 404, 422)
)
async def get_tenant(tenant_id: UUID, db: DbDep, _: AdminDep) -> dict[str, Any]:
    return await service.get_tenant(db, tenant_id)


@router.put(
    "/{tenant_id}",
    response_model=TenantPublic,
    responses=error_responses(400, 401, 403, 404, 409, 422),
)
async def update_tenant(
    tenant_id: UUID, body: TenantUpdate, db: DbDep, actor: AdminDep, audit: AuditDep
) -> dict[str, Any]:
    return await usecases.update_tenant(db, audit.context(actor), tenant_id, body)


@router.post(
    "/{tenant_id}/suspend",
    status_code=202,
    response_model=TenantPublic,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Suspend a tenant",
)
async def suspend_tenant(
    tenant_id: UUID, db: DbDep, actor: AdminDep, audit: AuditDep
) -> dict[str, Any]:
    return await usecases.request_transition(db, audit.context(actor), tenant_id, "suspend")


@router.post(
    "/{tenant_id}/resume",
    status_code=202,
    response_model=TenantPublic,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Resume a tenant",
)
async def resume_tenant(
    tenant_id: UUID, db: DbDep, actor: AdminDep, audit: AuditDep
) -> dict[str, Any]:
    return await usecases.request_transition(db, audit.context(actor), tenant_id, "resume")


@router.post(
    "/{tenant_id}/retry",
    status_code=202,
    response_model=TenantPublic,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Retry a tenant",
)
async def retry_tenant(
    tenant_id: UUID, db: DbDep, actor: AdminDep, audit: AuditDep
) -> dict[str, Any]:
    return await usecases.request_transition(db, audit.context(actor), tenant_id, "retry")


@router.delete(
    "/{tenant_id}",
    status_code=202,
    response_model=TenantPublic,
    responses=error_responses(401, 403, 404, 409, 422),
)
async def delete_tenant(
    tenant_id: UUID,
    db: DbDep,
    actor: AdminDep,
    audit: AuditDep,
    force: Annotated[
        bool, Query(description="Remove even if Proxmox no longer has the container")
    ] = False,
) -> dict[str, Any]:
    transition: usecases.Transition = "force_delete" if force else "delete"
    return await usecases.request_transition(db, audit.context(actor), tenant_id, transition)
