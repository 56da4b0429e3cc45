"""HTTP for `/api/v1/capacity`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from controlplane.capacity import service
from controlplane.capacity.schemas import CapacityReport
from controlplane.deps import AdminDep, DbDep
from controlplane.web.errors import error_responses

router = APIRouter(prefix="/api/v1/capacity", tags=["capacity"])


@router.get("", response_model=CapacityReport, responses=error_responses(401, 403))
async def capacity(db: DbDep, _: AdminDep) -> dict[str, Any]:
    """Per node and for the cluster: RAM (total, capacity with overcommit, allocated, used),
    CPU, tenants, headroom in tenants of each project's size, the daily samples of the last
    30 days and a days-until-full estimate from them."""
    return await service.capacity_report(db)
