"""The tenant page's lifecycle panel: snapshots, backups and their schedule, restore,
rebuild, resize and restart, as forms with CSRF.

Every change calls the same use case as the API (`controlplane.operations.usecases`, as
the admin of the session, so without tier caps) and answers with the panel again: the
operation it started shows at its top, and the panel refreshes itself on the tenant's live
events until the operation ends. A refusal with a field (a snapshot name taken, a shrinking
disk, a wrong confirmation) is shown next to that field of its form; a 409 without one (the
tenant busy) at the top of the form.

The form fields carry a prefix per form (`snap_name`, `restore_confirm` ...) so that two
forms on one page never share an element id; `_FIELDS` maps them to the use cases' bodies
and the refusals' fields back.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict

from controlplane.admin.forms import FormErrors, read_form, validate
from controlplane.admin.guard import CurrentAdmin, actor_of
from controlplane.admin.web import flash_error, is_htmx, redirect_after_change, render
from controlplane.audit.context import AuditContext
from controlplane.db import Database
from controlplane.deps import AuditDep, DbDep, SettingsDep
from controlplane.operations import service, usecases
from controlplane.operations.schemas import (
    BackupSchedule,
    Confirmation,
    ResizeRequest,
    SnapshotCreate,
    SnapshotName,
)
from controlplane.web.errors import REFUSALS, status_of

router = APIRouter()

# form -> {form field: body field}
_FIELDS: dict[str, dict[str, str]] = {
    "snapshot": {"snap_name": "name", "snap_description": "description"},
    "restore": {"restore_confirm": "confirm"},
    "rebuild": {"rebuild_confirm": "confirm"},
    "resize": {"ram_mb": "ram_mb", "cores": "cores", "disk_gb": "disk_gb"},
    "schedule": {
        "frequency": "frequency",
        "at": "at",
        "weekday": "weekday",
        "keep_last": "keep_last",
        "keep_daily": "keep_daily",
        "keep_weekly": "keep_weekly",
    },
}
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class _RestoreForm(BaseModel):
    model_config = ConfigDict(extra="forbid")
    backup_id: UUID


class _SnapshotPath(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: SnapshotName


def _body(form: str, values: dict[str, str]) -> dict[str, Any]:
    """The use case's body from the form's fields; an empty field is "not given"."""
    return {body: values[field] for field, body in _FIELDS[form].items() if values.get(field)}


def _form_errors(form: str, errors: dict[str, str]) -> dict[str, str]:
    """The body's fields named back as the form's (unknown ones at the top of the form)."""
    back = {body: field for field, body in _FIELDS.get(form, {}).items()}
    named: dict[str, str] = {}
    for key, message in errors.items():
        named.setdefault(back.get(key, key if key == "backup_id" else ""), message)
    return named


async def _panel(
    request: Request,
    db: Database,
    tenant_id: UUID,
    *,
    failed: str | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
    started: dict[str, Any] | None = None,
) -> Response:
    tenant = await service.tenant_for_operation(db, tenant_id, owner_user_id=None)
    schedule = await usecases.get_schedule(db, tenant_id, owner_user_id=None)
    headers = {"HX-Trigger": "tenants-changed"} if started is not None else None
    return render(
        request,
        "tenant_lifecycle.html",
        {
            "nav": "tenants",
            "t": tenant,
            "snapshots": await service.snapshots_of(db, tenant_id),
            "backups": await service.backups_of(db, tenant_id),
            "operations": (await service.operations_of(db, tenant_id))[:5],
            "schedule": schedule,
            "failed": failed,
            "errors": errors or {},
            "v": values or {},
            "started": started,
            "weekdays": WEEKDAYS,
        },
        partial="partials/tenant_lifecycle.html",
        status=status,
        headers=headers,
    )


async def _change(
    request: Request,
    db: Database,
    tenant_id: UUID,
    form: str,
    values: dict[str, str],
    run: Any,
) -> Response:
    """Run one use case; answer with the panel (HTMX) or go back to the tenant's page."""
    try:
        result = await run()
    except FormErrors as exc:
        errors, status = exc.errors, exc.status
    except REFUSALS as exc:
        errors, status = {exc.field or "": exc.message}, status_of(exc)
    else:
        if not is_htmx(request):
            return redirect_after_change(request, f"/admin/tenants/{tenant_id}")
        started = result if isinstance(result, dict) and "kind" in result else {}
        return await _panel(request, db, tenant_id, started=started)
    if status not in (409, 422):  # a missing tenant or backup: the page's banner
        return flash_error(request, next(iter(errors.values())), status)
    return await _panel(
        request,
        db,
        tenant_id,
        failed=form,
        errors=_form_errors(form, errors),
        values=values,
        status=status,
    )


def _ctx(audit: AuditDep, session: Any) -> AuditContext:
    return audit.context(actor_of(session))


@router.get("/tenants/{tenant_id}/lifecycle")
async def lifecycle_panel(
    tenant_id: UUID, request: Request, db: DbDep, _: CurrentAdmin
) -> Response:
    try:
        return await _panel(request, db, tenant_id)
    except REFUSALS as exc:
        return flash_error(request, exc.message, status_of(exc))


@router.post("/tenants/{tenant_id}/snapshots")
async def take_snapshot(
    tenant_id: UUID,
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    session: CurrentAdmin,
    audit: AuditDep,
) -> Response:
    values = await read_form(request)

    async def run() -> Any:
        body = validate(SnapshotCreate, _body("snapshot", values))
        return await usecases.create_snapshot(db, settings, _ctx(audit, session), tenant_id, body)

    return await _change(request, db, tenant_id, "snapshot", values, run)


@router.post("/tenants/{tenant_id}/snapshots/{name}/{action}")
async def snapshot_action(
    tenant_id: UUID,
    name: str,
    action: str,
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    session: CurrentAdmin,
    audit: AuditDep,
) -> Response:
    """`delete` or `rollback`; confirmed in the page (hx-confirm) before it is sent."""
    if action not in ("delete", "rollback"):
        return flash_error(request, f"unknown action {action!r}", 404)
    use = usecases.delete_snapshot if action == "delete" else usecases.rollback_snapshot

    async def run() -> Any:
        snap = validate(_SnapshotPath, {"name": name})
        return await use(db, settings, _ctx(audit, session), tenant_id, snap.name)

    return await _change(request, db, tenant_id, "snapshots", {}, run)


@router.post("/tenants/{tenant_id}/backups")
async def make_backup(
    tenant_id: UUID,
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    session: CurrentAdmin,
    audit: AuditDep,
) -> Response:
    async def run() -> Any:
        return await usecases.create_backup(db, settings, _ctx(audit, session), tenant_id)

    return await _change(request, db, tenant_id, "backups", {}, run)


@router.post("/tenants/{tenant_id}/backups/{backup_id}/delete")
async def delete_backup(
    tenant_id: UUID,
    backup_id: UUID,
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    session: CurrentAdmin,
    audit: AuditDep,
) -> Response:
    async def run() -> Any:
        return await usecases.delete_backup(
            db, settings, _ctx(audit, session), tenant_id, backup_id
        )

    return await _change(request, db, tenant_id, "backups", {}, run)


@router.post("/tenants/{tenant_id}/restore")
async def restore_backup(
    tenant_id: UUID,
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    session: CurrentAdmin,
    audit: AuditDep,
) -> Response:
    """One form for every backup (a select), so the confirmation field exists once."""
    values = await read_form(request)

    async def run() -> Any:
        which = validate(_RestoreForm, {"backup_id": values.get("backup_id") or None})
        body = validate(Confirmation, _body("restore", values))
        return await usecases.restore_backup(
            db, settings, _ctx(audit, session), tenant_id, which.backup_id, body
        )

    return await _change(request, db, tenant_id, "restore", values, run)


@router.post("/tenants/{tenant_id}/backup-schedule")
async def set_schedule(
    tenant_id: UUID,
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    session: CurrentAdmin,
    audit: AuditDep,
) -> Response:
    values = await read_form(request)

    async def run() -> Any:
        body = validate(BackupSchedule, _body("schedule", values))
        return await usecases.set_schedule(db, settings, _ctx(audit, session), tenant_id, body)

    return await _change(request, db, tenant_id, "schedule", values, run)


@router.post("/tenants/{tenant_id}/backup-schedule/delete")
async def delete_schedule(
    tenant_id: UUID, request: Request, db: DbDep, session: CurrentAdmin, audit: AuditDep
) -> Response:
    async def run() -> Any:
        return await usecases.delete_schedule(db, _ctx(audit, session), tenant_id)

    return await _change(request, db, tenant_id, "schedule", {}, run)


@router.post("/tenants/{tenant_id}/rebuild")
async def rebuild(
    tenant_id: UUID,
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    session: CurrentAdmin,
    audit: AuditDep,
) -> Response:
    values = await read_form(request)

    async def run() -> Any:
        body = validate(Confirmation, _body("rebuild", values))
        return await usecases.rebuild(db, settings, _ctx(audit, session), tenant_id, body)

    return await _change(request, db, tenant_id, "rebuild", values, run)


@router.post("/tenants/{tenant_id}/resize")
async def resize(
    tenant_id: UUID,
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    session: CurrentAdmin,
    audit: AuditDep,
) -> Response:
    values = await read_form(request)

    async def run() -> Any:
        body = validate(ResizeRequest, _body("resize", values))
        return await usecases.resize(db, settings, _ctx(audit, session), tenant_id, body)

    return await _change(request, db, tenant_id, "resize", values, run)


@router.post("/tenants/{tenant_id}/restart")
async def restart(
    tenant_id: UUID,
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    session: CurrentAdmin,
    audit: AuditDep,
) -> Response:
    async def run() -> Any:
        return await usecases.restart(db, settings, _ctx(audit, session), tenant_id)

    return await _change(request, db, tenant_id, "manage", {}, run)
