"""Projects: list, create, edit, delete (refused while tenants use one), the default one."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request, Response

from controlplane.admin import reads
from controlplane.admin.forms import FormErrors, from_api_error, read_form, to_data, validate
from controlplane.admin.guard import CurrentAdmin, actor_of
from controlplane.admin.web import flash_error, redirect_after_change, render
from controlplane.deps import AuditDep, DbDep
from controlplane.projects import service, usecases
from controlplane.projects.schemas import ProjectCreate, ProjectUpdate
from controlplane.web.errors import REFUSALS, status_of

router = APIRouter()
NEW_DEFAULTS = {
    "ram_mb": 512,
    "cores": 1,
    "disk_gb": 8,
    "app_port": 8080,
    "is_default": False,
    "self_service": False,
}


@router.get("/projects")
async def projects_page(request: Request, db: DbDep, _: CurrentAdmin) -> Response:
    page = await service.list_projects(db, limit=200, offset=0)
    return render(
        request,
        "projects.html",
        {
            "nav": "projects",
            "projects": page["items"],
            "tenants": {str(k): v for k, v in (await reads.live_tenants_per_project(db)).items()},
        },
        partial="partials/projects_table.html",
    )


def _form(
    request: Request,
    *,
    project: dict[str, Any] | None,
    values: dict[str, Any],
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    shown = dict(values)
    commands = shown.get("bootstrap_commands")
    if isinstance(commands, list):
        shown["bootstrap_commands"] = "\n".join(commands)
    return render(
        request,
        "project_form.html",
        {"nav": "projects", "project": project, "v": shown, "errors": errors or {}},
        partial="partials/project_form.html",
        status=status,
    )


CHECKBOXES = ("is_default", "self_service")


def _shown(values: dict[str, str]) -> dict[str, Any]:
    return values | {name: name in values for name in CHECKBOXES}


@router.get("/projects/new")
async def new_project(request: Request, _: CurrentAdmin) -> Response:
    return _form(request, project=None, values=NEW_DEFAULTS)


@router.post("/projects")
async def create_project(
    request: Request, db: DbDep, session: CurrentAdmin, audit: AuditDep
) -> Response:
    values = await read_form(request)
    try:
        data = to_data(
            values,
            fields=ProjectCreate.model_fields,
            checkboxes=CHECKBOXES,
            lines=("bootstrap_commands",),
        )
        body = validate(ProjectCreate, data)
        await usecases.create_project(db, audit.context(actor_of(session)), body)
    except FormErrors as exc:
        return _form(
            request, project=None, values=_shown(values), errors=exc.errors, status=exc.status
        )
    except REFUSALS as exc:
        err = from_api_error(exc)
        return _form(
            request, project=None, values=_shown(values), errors=err.errors, status=err.status
        )
    return redirect_after_change(request, "/admin/projects")


@router.get("/projects/{project_id}/edit")
async def edit_project(project_id: UUID, request: Request, db: DbDep, _: CurrentAdmin) -> Response:
    try:
        project = await service.get_project(db, project_id)
    except REFUSALS as exc:
        return flash_error(request, exc.message, status_of(exc))
    return _form(request, project=project, values=project)


@router.post("/projects/{project_id}")
async def update_project(
    project_id: UUID, request: Request, db: DbDep, session: CurrentAdmin, audit: AuditDep
) -> Response:
    try:
        current = await service.get_project(db, project_id)
    except REFUSALS as exc:
        return flash_error(request, exc.message, status_of(exc))
    values = await read_form(request)
    try:
        data = to_data(
            values,
            fields=ProjectUpdate.model_fields,
            checkboxes=CHECKBOXES,
            lines=("bootstrap_commands",),
            keep_empty=("health_path",),
        )
        body = validate(ProjectUpdate, data)
        changed = {
            k: v for k, v in body.model_dump(exclude_unset=True).items() if v != current.get(k)
        }
        await usecases.update_project(
            db, audit.context(actor_of(session)), project_id, ProjectUpdate.model_validate(changed)
        )
    except FormErrors as exc:
        return _form(
            request, project=current, values=_shown(values), errors=exc.errors, status=exc.status
        )
    except REFUSALS as exc:
        err = from_api_error(exc)
        return _form(
            request, project=current, values=_shown(values), errors=err.errors, status=err.status
        )
    return redirect_after_change(request, "/admin/projects")


@router.post("/projects/{project_id}/default")
async def make_default(
    project_id: UUID, request: Request, db: DbDep, session: CurrentAdmin, audit: AuditDep
) -> Response:
    try:
        await usecases.update_project(
            db, audit.context(actor_of(session)), project_id, ProjectUpdate(is_default=True)
        )
    except REFUSALS as exc:
        return flash_error(request, exc.message, status_of(exc))
    return redirect_after_change(request, "/admin/projects")


@router.post("/projects/{project_id}/delete")
async def delete_project(
    project_id: UUID, request: Request, db: DbDep, session: CurrentAdmin, audit: AuditDep
) -> Response:
    try:
        await usecases.delete_project(db, audit.context(actor_of(session)), project_id)
    except REFUSALS as exc:
        return flash_error(request, exc.message, status_of(exc))
    return redirect_after_change(request, "/admin/projects")
