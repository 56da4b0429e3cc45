"""HTTP for `/api/v1/users` (admin): list, read, disable and enable end users."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query

from controlplane.deps import AdminDep, AuditDep, DbDep
from controlplane.users import service, usecases
from controlplane.users.schemas import UserPublic, UserStatus
from controlplane.validation import IsoDateTime, Storable
from controlplane.web.errors import error_responses
from controlplane.web.pagination import Page, PageDep

router = APIRouter(prefix="/api/v1/users", tags=["users"])


@router.get("", response_model=Page[UserPublic], responses=error_responses(401, 403, 422))
async def list_users(
    db: DbDep,
    _: AdminDep,
    page: PageDep,
    email: Annotated[
        Annotated[str, Storable] | None,
        Query(max_length=254, description="Part of the e-mail, any case"),
    ] = None,
    status: UserStatus | None = None,
    created_since: IsoDateTime | None = None,
) -> dict[str, Any]:
    return await service.list_users(
        db,
        email=email,
        status=status,
        since=created_since,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/{user_id}", response_model=UserPublic, responses=error_responses(401, 403, 404, 422))
async def get_user(user_id: UUID, db: DbDep, _: AdminDep) -> dict[str, Any]:
    return await service.get_user(db, user_id)


@router.post(
    "/{user_id}/disable",
    response_model=UserPublic,
    responses=error_responses(401, 403, 404, 422),
)
async def disable_user(
    user_id: UUID, db: DbDep, actor: AdminDep, audit: AuditDep
) -> dict[str, Any]:
    """Lock the user out at once: every access and refresh token stops working."""
    return await usecases.set_disabled(db, audit.context(actor), user_id, True)


@router.post(
    "/{user_id}/enable",
    response_model=UserPublic,
    responses=error_responses(401, 403, 404, 422),
)
async def enable_user(user_id: UUID, db: DbDep, actor: AdminDep, audit: AuditDep) -> dict[str, Any]:
    """Let the user log in again (tokens from before the disable stay dead)."""
    return await usecases.set_disabled(db, audit.context(actor), user_id, False)
