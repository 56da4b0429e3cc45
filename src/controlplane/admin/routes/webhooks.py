"""Webhooks: endpoints (add, enable or disable, delete; the secret shown once, on the page
that answers the creation), and each endpoint's deliveries with manual redelivery."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Path, Request, Response

from controlplane.admin.forms import FormErrors, from_api_error, read_form, to_data, validate
from controlplane.admin.guard import CurrentAdmin, actor_of
from controlplane.admin.web import flash_error, redirect_after_change, render
from controlplane.deps import AuditDep, StateDep
from controlplane.state import Services
from controlplane.web.errors import REFUSALS, status_of
from controlplane.webhooks import service, usecases
from controlplane.webhooks.catalog import all_types
from controlplane.webhooks.schemas import WebhookCreate, WebhookUpdate

router = APIRouter()
NO_STORE = {"Cache-Control": "no-store"}  # the page with the secret is never cached


async def _page(
    request: Request,
    state: Services,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    created: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    page = await service.list_webhooks(state.db, limit=200, offset=0)
    return render(
        request,
        "webhooks.html",
        {
            "nav": "webhooks",
            "hooks": page["items"],
            "total": page["total"],
            "v": values or {"events": "tenant.*\nnode.*"},
            "errors": errors or {},
            "created": created,
            "types": all_types(),
        },
        status=status,
        headers=NO_STORE if created else None,
    )


@router.get("/webhooks")
async def webhooks_page(request: Request, state: StateDep, _: CurrentAdmin) -> Response:
    return await _page(request, state)


@router.post("/webhooks")
async def create_webhook(
    request: Request, state: StateDep, session: CurrentAdmin, audit: AuditDep
) -> Response:
    values = await read_form(request)
    try:
        data = to_data(values, fields=("url", "events", "description"), lines=("events",))
        body = validate(WebhookCreate, data)
        row = await usecases.create_webhook(
            state.db,
            state.sealer,
            audit.context(actor_of(session)),
            body,
            allow_private=state.settings.webhook_allow_private,
        )
    except FormErrors as exc:
        return await _page(request, state, values=values, errors=exc.errors, status=exc.status)
    except REFUSALS as exc:
        err = from_api_error(exc)
        return await _page(request, state, values=values, errors=err.errors, status=err.status)
    return await _page(request, state, created=row, status=201)


@router.post("/webhooks/{webhook_id}/{action}")
async def webhook_action(
    webhook_id: UUID, action: str, request: Request, state: StateDep, session: CurrentAdmin,
    audit: AuditDep,
) -> Response:  # fmt: skip
    ctx = audit.context(actor_of(session))
    try:
        if action == "delete":
            await usecases.delete_webhook(state.db, ctx, webhook_id)
        elif action in ("enable", "disable"):
            await usecases.update_webhook(
                state.db,
                ctx,
                webhook_id,
                WebhookUpdate(enabled=action == "enable"),
                allow_private=state.settings.webhook_allow_private,
            )
        else:
            return flash_error(request, f"unknown action {action!r}", 404)
    except REFUSALS as exc:
        return flash_error(request, exc.message, status_of(exc))
    return redirect_after_change(request, "/admin/webhooks")


@router.get("/webhooks/{webhook_id}")
async def webhook_page(
    webhook_id: UUID, request: Request, state: StateDep, _: CurrentAdmin
) -> Response:
    try:
        hook = await service.get_webhook(state.db, webhook_id)
        log = await service.list_deliveries(state.db, webhook_id, state=None, limit=100, offset=0)
    except REFUSALS as exc:
        return flash_error(request, exc.message, status_of(exc))
    return render(
        request,
        "webhook.html",
        {"nav": "webhooks", "hook": hook, "deliveries": log["items"], "total": log["total"]},
    )


@router.post("/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver")
async def redeliver(
    webhook_id: UUID,
    delivery_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    request: Request,
    state: StateDep,
    session: CurrentAdmin,
    audit: AuditDep,
) -> Response:
    try:
        await usecases.redeliver(
            state.db, audit.context(actor_of(session)), webhook_id, delivery_id
        )
    except REFUSALS as exc:
        return flash_error(request, exc.message, status_of(exc))
    return redirect_after_change(request, f"/admin/webhooks/{webhook_id}")
