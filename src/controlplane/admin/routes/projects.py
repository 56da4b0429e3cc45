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
    "warm_pool_size": 0,
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


def actions_text(actions: list[dict[str, Any]]) -> str:
    """The form's text for `app_actions`: one `name: command` per line, `!name` to confirm."""
    return "\n".join(
        f"{'!' if a.get('confirm') else ''}{a['name']}: {a['command']}" for a in actions
    )


def parse_actions(text: str) -> list[dict[str, Any]]:
    """The form's `app_actions` lines back into actions (FormErrors naming the line)."""
    actions: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        name, sep, command = line.partition(":")
        if not sep or not name.strip() or not command.strip():
            raise FormErrors({"app_actions": f"line {number}: write it as name: command"})
        name = name.strip()
        confirm = name.startswith("!")
        actions.append(
            {"name": name.removeprefix("!").strip(), "command": command.strip(), "confirm": confirm}
        )
    return actions


def _data(values: dict[str, str], fields: Any, **options: Any) -> dict[str, Any]:
    data = to_data(
        values, fields=fields, checkboxes=CHECKBOXES, lines=("bootstrap_commands",), **options
    )
    data.pop("app_actions", None)
    if "app_actions" in values:
        data["app_actions"] = parse_actions(values["app_actions"])
    return data


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
    actions = shown.get("app_actions")
    if isinstance(actions, list):
        shown["app_actions"] = actions_text(actions)
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
        data = _data(values, ProjectCreate.model_fields)
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
        data = _data(values, ProjectUpdate.model_fields, keep_empty=("health_path", "app_service"))
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
