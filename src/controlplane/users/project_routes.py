"""HTTP for `/api/v1/user/projects`: the projects an end user may create tenants from."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from controlplane.auth.deps import UserDep
from controlplane.deps import DbDep
from controlplane.projects.schemas import UserProject
from controlplane.projects.service import list_self_service
from controlplane.web.errors import error_responses

router = APIRouter(prefix="/api/v1/user/projects", tags=["user tenants"])


@router.get("", response_model=list[UserProject], responses=error_responses(401))
async def list_my_projects(_: UserDep, db: DbDep) -> list[dict[str, Any]]:
    """The self-service projects (the default first) and the size their tenants get; the
    operator's other projects are not listed and cannot be used."""
    return await list_self_service(db)
