"""HTTP for usage graphs: a tenant's (its owner, or the admin token) and a node's (operators).

Every answer is read from PostgreSQL, where the collector keeps Proxmox's archives; a
graph request never reaches Proxmox, however many people look.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query

from controlplane.auth.deps import UserDep
from controlplane.deps import AdminDep, DbDep
from controlplane.usage import service
from controlplane.usage.archives import Timeframe
from controlplane.usage.schemas import NodeUsage, TenantUsage
from controlplane.web.errors import error_responses

router = APIRouter(tags=["usage"])

TimeframeQuery = Annotated[
    Timeframe,
    Query(description="The archive: `hour` (1 min steps), `day` (30 min), `week` (3 h), "
          "`month` (12 h); 70 points each"),
]  # fmt: skip


@router.get(
    "/api/v1/user/tenants/{tenant_id}/metrics",
    response_model=TenantUsage,
    responses=error_responses(401, 404, 422),
    tags=["user tenants"],
    summary="Usage history of one of your tenants",
)
async def my_tenant_usage(
    tenant_id: UUID, user: UserDep, db: DbDep, timeframe: TimeframeQuery = "hour"
) -> dict[str, Any]:
    return await service.tenant_usage(db, tenant_id, timeframe, owner_user_id=user["id"])


@router.get(
    "/api/v1/tenants/{tenant_id}/metrics",
    response_model=TenantUsage,
    responses=error_responses(401, 403, 404, 422),
    tags=["tenants"],
    summary="Usage history of a tenant",
)
async def tenant_usage(
    tenant_id: UUID, db: DbDep, _: AdminDep, timeframe: TimeframeQuery = "hour"
) -> dict[str, Any]:
    return await service.tenant_usage(db, tenant_id, timeframe)


@router.get(
    "/api/v1/nodes/{node_id}/metrics",
    response_model=NodeUsage,
    responses=error_responses(401, 403, 404, 422),
    tags=["nodes"],
    summary="Usage history of a node",
)
async def node_usage(
    node_id: UUID, db: DbDep, _: AdminDep, timeframe: TimeframeQuery = "hour"
) -> dict[str, Any]:
    return await service.node_usage(db, node_id, timeframe)
