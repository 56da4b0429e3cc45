"""HTTP for `/api/v1/user/tenants`: an end user's own tenants.

The same rules as the admin API (`controlplane.tenants.service`), always scoped to the
caller: every query carries `owner_user_id`, so someone else's tenant is a 404, never a
403 that would confirm it exists. Changes record intent and return 202; the workers do
the rest. Users see `UserTenantPublic`, not the node, VMID or internal errors.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Response

from controlplane.auth.deps import UserActorDep, UserDep
from controlplane.config import Settings
from controlplane.deps import AuditDep, DbDep, SettingsDep
from controlplane.errors import EmailNotVerified, NoCapacity
from controlplane.tenants import service, usecases
from controlplane.tenants.schemas import TenantStatus
from controlplane.users.schemas import UserTenantCreate, UserTenantPublic
from controlplane.users.tenant_view import user_tenant
from controlplane.web.errors import error_responses
from controlplane.web.pagination import Page, PageDep

PREFIX = "/api/v1/user/tenants"


router = APIRouter(prefix=PREFIX, tags=["user tenants"])


def _public(row: dict[str, Any], settings: Settings) -> dict[str, Any]:
    return user_tenant(row, settings)


@router.get("", response_model=Page[UserTenantPublic], responses=error_responses(401, 422))
async def list_my_tenants(
    user: UserDep,
    db: DbDep,
    settings: SettingsDep,
    page: PageDep,
    status: Annotated[TenantStatus | None, Query()] = None,
) -> dict[str, Any]:
    result = await service.list_tenants(
        db, owner_user_id=user["id"], status=status, limit=page.limit, offset=page.offset
    )
    return {**result, "items": [_public(row, settings) for row in result["items"]]}


@router.post(
    "",
    status_code=202,
    response_model=UserTenantPublic,
    responses=error_responses(400, 401, 402, 403, 404, 409, 422),
)
async def create_my_tenant(
    body: UserTenantCreate,
    user: UserDep,
    actor: UserActorDep,
    db: DbDep,
    settings: SettingsDep,
    audit: AuditDep,
    response: Response,
) -> dict[str, Any]:
    """Start a tenant: a project open to users by slug (or the default one, when it is
    open to users), the node picked for you. Any other project is a 422 naming `project`,
    the same as one that does not exist."""
    if settings.email_verification_required and not user["email_verified"]:
        raise EmailNotVerified(
            "verify your e-mail address first (POST /api/v1/auth/resend-verification sends"
            " the mail again)"
        )
    try:
        row = await usecases.create_tenant(  # 402 beyond the user's billing tier
            db, settings, audit.context(actor), body, owner_user_id=user["id"]
        )
    except NoCapacity as exc:
        # The operator's message names nodes and templates: a user gets plain words.
        raise NoCapacity("there is no room for a new tenant right now; try again later") from exc
    response.headers["Location"] = f"{PREFIX}/{row['id']}"
    return _public(row, settings)


@router.get(
    "/{tenant_id}", response_model=UserTenantPublic, responses=error_responses(401, 404, 422)
)
async def get_my_tenant(
    tenant_id: UUID, user: UserDep, db: DbDep, settings: SettingsDep
) -> dict[str, Any]:
    return _public(await service.get_tenant(db, tenant_id, owner_user_id=user["id"]), settings)


@router.delete(
    "/{tenant_id}",
    status_code=202,
    response_model=UserTenantPublic,
    responses=error_responses(401, 404, 409, 422),
)
async def delete_my_tenant(
    tenant_id: UUID,
    user: UserDep,
    actor: UserActorDep,
    db: DbDep,
    settings: SettingsDep,
    audit: AuditDep,
) -> dict[str, Any]:
    row = await usecases.request_transition(
        db, audit.context(actor), tenant_id, "delete", owner_user_id=user["id"]
    )
    return _public(row, settings)


@router.post(
    "/{tenant_id}/suspend",
    status_code=202,
    response_model=UserTenantPublic,
    responses=error_responses(401, 404, 409, 422),
    summary="Suspend one of your tenants",
)
async def suspend_my_tenant(
    tenant_id: UUID,
    user: UserDep,
    actor: UserActorDep,
    db: DbDep,
    settings: SettingsDep,
    audit: AuditDep,
) -> dict[str, Any]:
    row = await usecases.request_transition(
        db, audit.context(actor), tenant_id, "suspend", owner_user_id=user["id"]
    )
    return _public(row, settings)


@router.post(
    "/{tenant_id}/resume",
    status_code=202,
    response_model=UserTenantPublic,
    responses=error_responses(401, 404, 409, 422),
    summary="Resume one of your tenants",
)
async def resume_my_tenant(
    tenant_id: UUID,
    user: UserDep,
    actor: UserActorDep,
    db: DbDep,
    settings: SettingsDep,
    audit: AuditDep,
) -> dict[str, Any]:
    row = await usecases.request_transition(
        db, audit.context(actor), tenant_id, "resume", owner_user_id=user["id"]
    )
    return _public(row, settings)


@router.post(
    "/{tenant_id}/retry",
    status_code=202,
    response_model=UserTenantPublic,
    responses=error_responses(401, 404, 409, 422),
    summary="Retry one of your tenants that failed",
)
async def retry_my_tenant(
    tenant_id: UUID,
    user: UserDep,
    actor: UserActorDep,
    db: DbDep,
    settings: SettingsDep,
    audit: AuditDep,
) -> dict[str, Any]:
    """From `error` only (409 otherwise), as the admin's retry: the operation that failed
    starts again, a provisioning at the step that failed."""
    row = await usecases.request_transition(
        db, audit.context(actor), tenant_id, "retry", owner_user_id=user["id"]
    )
    return _public(row, settings)
