"""HTTP for app management: `/api/v1/user/tenants/{id}/app...` (the owner) and
`/api/v1/tenants/{id}/app...` (an admin), the same use cases behind both."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Path, Query

from controlplane.apps import service
from controlplane.apps.schemas import MAX_LOG_LINES, ActionRequest, AppLogs, AppRun, AppStatus
from controlplane.auth.deps import UserActorDep, UserDep
from controlplane.deps import AdminDep, AuditDep, StateDep
from controlplane.web.errors import error_responses

router = APIRouter(tags=["app management"])

USER = "/api/v1/user/tenants/{tenant_id}/app"
ADMIN = "/api/v1/tenants/{tenant_id}/app"
Lines = Annotated[int, Query(ge=1, le=MAX_LOG_LINES, description="The newest N lines")]
Since = Annotated[datetime | None, Query(description="Only lines from then on (ISO 8601)")]
ActionName = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]
ActionBody = Annotated[ActionRequest | None, Body()]
READ = error_responses(401, 404, 409, 422, 502)
ADMIN_READ = error_responses(401, 403, 404, 409, 422, 502)
# Routes with a body may also answer 400 (a body that is not JSON).
WITH_BODY = error_responses(400, 401, 404, 409, 422, 502)
ADMIN_WITH_BODY = error_responses(400, 401, 403, 404, 409, 422, 502)


@router.get(USER, response_model=AppStatus, responses=READ, summary="Your tenant's app")
async def user_app(tenant_id: UUID, user: UserDep, state: StateDep) -> dict[str, Any]:
    """The service's state (`systemctl show`), the health poller's last answer, the
    project's actions and the latest runs."""
    return await service.app_status(state, tenant_id, user["id"])


@router.post(USER + "/restart", response_model=AppRun, responses=READ)
async def user_app_restart(
    tenant_id: UUID, user: UserDep, actor: UserActorDep, state: StateDep, audit: AuditDep
) -> dict[str, Any]:
    """`systemctl restart` the app's unit; the run (exit status, output) is kept."""
    return await service.restart_app(state, audit.context(actor), tenant_id, user["id"])


@router.get(USER + "/logs", response_model=AppLogs, responses=READ)
async def user_app_logs(
    tenant_id: UUID, user: UserDep, state: StateDep, lines: Lines = 100, since: Since = None
) -> dict[str, Any]:
    """The app unit's journal, newest last, at most 1000 lines."""
    return await service.app_logs(state, tenant_id, user["id"], lines=lines, since=since)


@router.post(USER + "/actions/{name}", response_model=AppRun, responses=WITH_BODY)
async def user_app_action(
    tenant_id: UUID,
    name: ActionName,
    user: UserDep,
    actor: UserActorDep,
    state: StateDep,
    audit: AuditDep,
    body: ActionBody = None,
) -> dict[str, Any]:
    """Run one of the project's named actions in the container (an action marked
    `confirm` needs `{"confirm": true}`)."""
    confirmed = body.confirm if body else False
    return await service.run_action(
        state, audit.context(actor), tenant_id, user["id"], name, confirmed=confirmed
    )


@router.get(ADMIN, response_model=AppStatus, responses=ADMIN_READ, summary="A tenant's app")
async def admin_app(tenant_id: UUID, _: AdminDep, state: StateDep) -> dict[str, Any]:
    return await service.app_status(state, tenant_id, None)


@router.post(ADMIN + "/restart", response_model=AppRun, responses=ADMIN_READ)
async def admin_app_restart(
    tenant_id: UUID, actor: AdminDep, state: StateDep, audit: AuditDep
) -> dict[str, Any]:
    return await service.restart_app(state, audit.context(actor), tenant_id, None)


@router.get(ADMIN + "/logs", response_model=AppLogs, responses=ADMIN_READ)
async def admin_app_logs(
    tenant_id: UUID, _: AdminDep, state: StateDep, lines: Lines = 100, since: Since = None
) -> dict[str, Any]:
    return await service.app_logs(state, tenant_id, None, lines=lines, since=since)


@router.post(ADMIN + "/actions/{name}", response_model=AppRun, responses=ADMIN_WITH_BODY)
async def admin_app_action(
    tenant_id: UUID,
    name: ActionName,
    actor: AdminDep,
    state: StateDep,
    audit: AuditDep,
    body: ActionBody = None,
) -> dict[str, Any]:
    confirmed = body.confirm if body else False
    return await service.run_action(
        state, audit.context(actor), tenant_id, None, name, confirmed=confirmed
    )
