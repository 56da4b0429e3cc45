"""The tenant page's console and app panel: a console ticket for the dashboard's xterm.js
(the same single-use ticket as the API's), and the app's state, restart, actions and
journal as HTMX partials. The same use cases as the API (`console.service`,
`apps.service`), audited as the admin of the session."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from controlplane.admin.guard import CurrentAdmin, actor_of
from controlplane.admin.web import flash_error, render
from controlplane.apps import service as apps
from controlplane.apps.schemas import MAX_LOG_LINES
from controlplane.console import service as consoles
from controlplane.console.routes import WS_PATH
from controlplane.deps import AuditDep, StateDep
from controlplane.web.errors import REFUSALS, http_of, status_of

router = APIRouter()


@router.post("/tenants/{tenant_id}/console/ticket")
async def console_ticket(
    tenant_id: UUID, request: Request, state: StateDep, session: CurrentAdmin, audit: AuditDep
) -> Response:
    context = audit.context(actor_of(session))
    who = consoles.Who(context.actor, None, context.request.client_ip)
    try:
        issued = await consoles.issue_ticket(state.db, state.settings, context, tenant_id, who)
    except REFUSALS as exc:
        status, code = http_of(exc)
        return JSONResponse(
            {"error": {"status": status, "code": code, "message": exc.message}}, status
        )
    path = f"{WS_PATH}?ticket={issued['ticket']}"
    return JSONResponse({"ws_path": path, "expires_in": issued["expires_in"]})


async def _panel(
    request: Request, state: Any, tenant_id: UUID, *, run: dict[str, Any] | None = None
) -> Response:
    try:
        app = await apps.app_status(state, tenant_id, None)
        problem = None
    except REFUSALS as exc:
        app, problem = None, exc.message
    return render(
        request,
        "partials/tenant_app.html",
        {"tenant_id": tenant_id, "app": app, "problem": problem, "run": run},
    )


@router.get("/tenants/{tenant_id}/app")
async def app_panel(
    tenant_id: UUID, request: Request, state: StateDep, _: CurrentAdmin
) -> Response:
    return await _panel(request, state, tenant_id)


@router.post("/tenants/{tenant_id}/app/restart")
async def app_restart(
    tenant_id: UUID, request: Request, state: StateDep, session: CurrentAdmin, audit: AuditDep
) -> Response:
    try:
        run = await apps.restart_app(state, audit.context(actor_of(session)), tenant_id, None)
    except REFUSALS as exc:
        return flash_error(request, exc.message, status_of(exc))
    return await _panel(request, state, tenant_id, run=run)


@router.post("/tenants/{tenant_id}/app/actions/{name}")
async def app_action(
    tenant_id: UUID,
    name: str,
    request: Request,
    state: StateDep,
    session: CurrentAdmin,
    audit: AuditDep,
) -> Response:
    """Confirmed in the page (hx-confirm) before it is sent."""
    try:
        run = await apps.run_action(
            state, audit.context(actor_of(session)), tenant_id, None, name, confirmed=True
        )
    except REFUSALS as exc:
        return flash_error(request, exc.message, status_of(exc))
    return await _panel(request, state, tenant_id, run=run)


@router.get("/tenants/{tenant_id}/app/logs")
async def app_logs(
    tenant_id: UUID,
    request: Request,
    state: StateDep,
    _: CurrentAdmin,
    lines: Annotated[int, Query(ge=1, le=MAX_LOG_LINES)] = 100,
) -> Response:
    try:
        logs = await apps.app_logs(state, tenant_id, None, lines=lines, since=None)
    except REFUSALS as exc:
        return flash_error(request, exc.message, status_of(exc))
    return render(request, "partials/tenant_app_logs.html", {"logs": logs})
