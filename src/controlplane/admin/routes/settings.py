"""System settings: base domain, default project, RAM overcommit, billing tiers."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response

from controlplane.admin import reads
from controlplane.admin.forms import FormErrors, from_api_error, read_form, to_data, validate
from controlplane.admin.guard import CurrentAdmin, actor_of
from controlplane.admin.web import redirect_after_change, render
from controlplane.db import Database
from controlplane.deps import AuditDep, DbDep, SettingsDep
from controlplane.sysconfig import service as sysconfig
from controlplane.sysconfig import usecases
from controlplane.sysconfig.schemas import SystemSettingsUpdate
from controlplane.web.errors import REFUSALS

router = APIRouter()


def _shown(values: dict[str, Any]) -> dict[str, Any]:
    shown = dict(values)
    if not isinstance(shown.get("billing_tiers"), str):
        shown["billing_tiers"] = json.dumps(shown.get("billing_tiers") or [], indent=2)
    return shown


async def _page(
    request: Request,
    db: Database,
    env_domain: str,
    values: dict[str, Any],
    version: str,
    *,
    errors: dict[str, str] | None = None,
    status: int = 200,
    saved: bool = False,
) -> Response:
    return render(
        request,
        "settings.html",
        {
            "nav": "settings",
            "v": _shown(values),
            "version": version,
            "errors": errors or {},
            "projects": await reads.project_names(db),
            "env_domain": env_domain,
            "saved": saved,
        },
        partial="partials/settings_form.html",
        status=status,
    )


@router.get("/settings")
async def settings_page(
    request: Request, db: DbDep, settings: SettingsDep, _: CurrentAdmin
) -> Response:
    values = await sysconfig.get_settings(db)
    saved = request.query_params.get("saved") == "1"
    return await _page(
        request, db, settings.base_domain, values, sysconfig.version_of(values), saved=saved
    )


@router.post("/settings")
async def save_settings(
    request: Request, db: DbDep, settings: SettingsDep, session: CurrentAdmin, audit: AuditDep
) -> Response:
    values = await read_form(request)
    version = values.get("version", "")
    try:
        data = to_data(
            values,
            fields=SystemSettingsUpdate.model_fields,
            keep_empty=("default_project", "billing_tiers"),
        )
        if data.get("billing_tiers") is not None:
            try:
                data["billing_tiers"] = json.loads(data["billing_tiers"])
            except ValueError as exc:
                raise FormErrors({"billing_tiers": f"not valid JSON: {exc}"}) from None
        body = validate(SystemSettingsUpdate, data)
        await usecases.update_settings(
            db, audit.context(actor_of(session)), body, expected_version=version or None
        )
    except FormErrors as exc:
        return await _page(
            request, db, settings.base_domain, values, version, errors=exc.errors, status=exc.status
        )
    except REFUSALS as exc:
        err = from_api_error(exc)
        return await _page(
            request, db, settings.base_domain, values, version, errors=err.errors, status=err.status
        )
    return redirect_after_change(request, "/admin/settings?saved=1")
