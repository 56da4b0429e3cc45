"""Tenants: filtered list, create, detail, and the actions (suspend, resume, retry, delete,
force-delete). Lists and details refresh on live events (admin.js), polling as a fallback."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from controlplane.admin import reads
from controlplane.admin.forms import FormErrors, from_api_error, read_form, to_data, validate
from controlplane.admin.guard import CurrentAdmin, actor_of
from controlplane.admin.usage import usage_for
from controlplane.admin.web import (
    FINAL_STATUSES,
    flash_error,
    is_htmx,
    redirect_after_change,
    render,
)
from controlplane.db import Database
from controlplane.deps import AuditDep, DbDep, SettingsDep
from controlplane.tenants import service, usecases
from controlplane.tenants.schemas import TenantCreate, TenantStatus
from controlplane.web.errors import REFUSALS, status_of

router = APIRouter()
PAGE_SIZE = 50

# URL name -> (the use case's transition, statuses it applies to)
ACTIONS: dict[str, tuple[usecases.Transition, tuple[str, ...]]] = {
    "suspend": ("suspend", service.TRANSITIONS["suspend"][0]),
    "resume": ("resume", service.TRANSITIONS["resume"][0]),
    "retry": ("retry", ("error",)),
    "delete": ("delete", service.TRANSITIONS["delete"][0]),
    "force-delete": ("force_delete", service.TRANSITIONS["force_delete"][0]),
}
CONFIRM = {
    "suspend": "Suspend {name}? Its container stops.",
    "resume": "Resume {name}?",
    "retry": "Retry the failed step of {name}?",
    "delete": "Delete {name}? Its container and data are destroyed.",
    "force-delete": "Force-delete {name}? The record goes even if Proxmox cannot be reached.",
}


def actions_for(status: str) -> list[str]:
    return [name for name, (_, allowed) in ACTIONS.items() if status in allowed]


class TenantFilters(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: TenantStatus | None = None
    node_id: UUID | None = None
    project_id: UUID | None = None
    owner: UUID | None = None
    offset: Annotated[int, Field(ge=0, le=10_000_000)] = 0

    def query(self, **override: Any) -> str:
        from urllib.parse import urlencode

        values = self.model_dump() | override
        return urlencode({k: str(v) for k, v in values.items() if v not in (None, "", 0)})


async def _names(db: Database) -> dict[str, dict[str, str]]:
    return {
        "nodes": {str(r["id"]): r["name"] for r in await reads.node_names(db)},
        "projects": {str(r["id"]): r["name"] for r in await reads.project_names(db)},
    }


@router.get("/tenants")
async def tenants_page(request: Request, db: DbDep, _: CurrentAdmin) -> Response:
    raw = {k: v.strip() for k, v in request.query_params.items()}
    errors: dict[str, str] = {}
    try:
        filters = validate(TenantFilters, {k: v for k, v in raw.items() if v})
    except FormErrors as exc:
        errors = exc.errors
        filters = TenantFilters()
    page = await service.list_tenants(
        db,
        status=filters.status,
        node_id=filters.node_id,
        project_id=filters.project_id,
        owner_user_id=filters.owner,
        include_deleted=filters.status == "deleted",
        limit=PAGE_SIZE,
        offset=filters.offset,
    )
    tenants = page["items"]
    names = await _names(db)
    return render(
        request,
        "tenants.html",
        {
            "nav": "tenants",
            "tenants": tenants,
            "total": page["total"],
            "filters": filters,
            "raw": raw,
            "errors": errors,
            "names": names,
            "busy": any(t["status"] not in FINAL_STATUSES for t in tenants),
            "actions_for": actions_for,
            "confirm": CONFIRM,
            "page_size": PAGE_SIZE,
            "statuses": TenantStatus.__args__,  # type: ignore[attr-defined]
        },
        partial="partials/tenants_table.html",
        status=422 if errors else 200,
    )


async def _create_form(
    request: Request,
    db: Database,
    values: dict[str, Any],
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    return render(
        request,
        "tenant_form.html",
        {
            "nav": "tenants",
            "v": values,
            "errors": errors or {},
            "projects": await reads.project_names(db),
            "nodes": await reads.node_names(db),
        },
        partial="partials/tenant_form.html",
        status=status,
    )


@router.get("/tenants/new")
async def new_tenant(request: Request, db: DbDep, _: CurrentAdmin) -> Response:
    default = next((p for p in await reads.project_names(db) if p["is_default"]), None)
    return await _create_form(request, db, {"project_id": default["id"] if default else None})


@router.post("/tenants")
async def create_tenant(
    request: Request, db: DbDep, settings: SettingsDep, session: CurrentAdmin, audit: AuditDep
) -> Response:
    values = await read_form(request)
    try:
        body = validate(TenantCreate, to_data(values, fields=TenantCreate.model_fields))
        row = await usecases.create_tenant(db, settings, audit.context(actor_of(session)), body)
    except FormErrors as exc:
        return await _create_form(request, db, values, exc.errors, exc.status)
    except REFUSALS as exc:
        err = from_api_error(exc)
        return await _create_form(request, db, values, err.errors, err.status)
    return redirect_after_change(request, f"/admin/tenants/{row['id']}")


@router.get("/tenants/{tenant_id}")
async def tenant_detail(tenant_id: UUID, request: Request, db: DbDep, _: CurrentAdmin) -> Response:
    try:
        tenant = await service.get_tenant(db, tenant_id)
    except REFUSALS as exc:
        return flash_error(request, exc.message, status_of(exc))
    trail = await reads.audit_page(db, target_type="tenant", target_id=str(tenant_id), limit=100)
    return render(
        request,
        "tenant.html",
        {
            "nav": "tenants",
            "t": tenant,
            "names": await _names(db),
            "audit": trail["items"],
            "admin_names": await reads.admin_names(db),
            "busy": tenant["status"] not in FINAL_STATUSES,
            "actions": actions_for(tenant["status"]),
            "confirm": CONFIRM,
            "usage": await usage_for(db, "tenant", tenant_id, request),
        },
        partial="partials/tenant_detail.html",
    )


@router.post("/tenants/{tenant_id}/{action}")
async def tenant_action(
    tenant_id: UUID,
    action: str,
    request: Request,
    db: DbDep,
    session: CurrentAdmin,
    audit: AuditDep,
) -> Response:
    if action not in ACTIONS:
        return flash_error(request, f"unknown action {action!r}", 404)
    transition, _ = ACTIONS[action]
    try:
        # The dashboard's entries carry the status reached, a delete's too.
        await usecases.request_transition(
            db, audit.context(actor_of(session)), tenant_id, transition, record_status=True
        )
    except REFUSALS as exc:
        return flash_error(request, exc.message, status_of(exc))
    if is_htmx(request) or request.headers.get("HX-Request") == "true":
        return Response(status_code=204, headers={"HX-Trigger": "tenants-changed"})
    return redirect_after_change(request, f"/admin/tenants/{tenant_id}")
