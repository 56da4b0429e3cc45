"""HTTP for `/api/v1/webhooks`: endpoints, their delivery log, manual redelivery."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Path, Query, Response

from controlplane.deps import AdminDep, AuditDep, DbDep, SealerDep, SettingsDep
from controlplane.web.errors import error_responses
from controlplane.web.pagination import Page, PageDep
from controlplane.webhooks import service, usecases
from controlplane.webhooks.catalog import all_types
from controlplane.webhooks.schemas import (
    DeliveryPublic,
    WebhookCreate,
    WebhookCreated,
    WebhookPublic,
    WebhookUpdate,
)

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])
DeliveryId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.get("/event-types", response_model=list[str], responses=error_responses(401, 403))
async def event_types(_: AdminDep) -> list[str]:
    """Every event type an endpoint can subscribe to (besides `*` and `group.*`)."""
    return all_types()


@router.get("", response_model=Page[WebhookPublic], responses=error_responses(401, 403, 422))
async def list_webhooks(db: DbDep, _: AdminDep, page: PageDep) -> dict[str, Any]:
    return await service.list_webhooks(db, limit=page.limit, offset=page.offset)


@router.post(
    "",
    status_code=201,
    response_model=WebhookCreated,
    responses=error_responses(400, 401, 403, 409, 422),
)
async def create_webhook(
    body: WebhookCreate,
    db: DbDep,
    sealer: SealerDep,
    actor: AdminDep,
    audit: AuditDep,
    settings: SettingsDep,
    response: Response,
) -> dict[str, Any]:
    """Register an endpoint. The answer carries its signing `secret`, shown only here."""
    row = await usecases.create_webhook(
        db, sealer, audit.context(actor), body, allow_private=settings.webhook_allow_private
    )
    response.headers["Location"] = f"/api/v1/webhooks/{row['id']}"
    return row


@router.get(
    "/{webhook_id}", response_model=WebhookPublic, responses=error_responses(401, 403, 404, 422)
)
async def get_webhook(webhook_id: UUID, db: DbDep, _: AdminDep) -> dict[str, Any]:
    return await service.get_webhook(db, webhook_id)


@router.put(
    "/{webhook_id}",
    response_model=WebhookPublic,
    responses=error_responses(400, 401, 403, 404, 409, 422),
)
async def update_webhook(
    webhook_id: UUID,
    body: WebhookUpdate,
    db: DbDep,
    actor: AdminDep,
    audit: AuditDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    return await usecases.update_webhook(
        db, audit.context(actor), webhook_id, body, allow_private=settings.webhook_allow_private
    )


@router.delete("/{webhook_id}", status_code=204, responses=error_responses(401, 403, 404, 422))
async def delete_webhook(webhook_id: UUID, db: DbDep, actor: AdminDep, audit: AuditDep) -> Response:
    await usecases.delete_webhook(db, audit.context(actor), webhook_id)
    return Response(status_code=204)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=Page[DeliveryPublic],
    responses=error_responses(401, 403, 404, 422),
)
async def list_deliveries(
    webhook_id: UUID,
    db: DbDep,
    _: AdminDep,
    page: PageDep,
    state: Annotated[Literal["pending", "delivered", "failed"] | None, Query()] = None,
) -> dict[str, Any]:
    """The endpoint's delivery log, newest first."""
    return await service.list_deliveries(
        db, webhook_id, state=state, limit=page.limit, offset=page.offset
    )


@router.get(
    "/{webhook_id}/deliveries/{delivery_id}",
    response_model=DeliveryPublic,
    responses=error_responses(401, 403, 404, 422),
)
async def get_delivery(
    webhook_id: UUID, delivery_id: DeliveryId, db: DbDep, _: AdminDep
) -> dict[str, Any]:
    return await service.get_delivery(db, webhook_id, delivery_id)


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    response_model=DeliveryPublic,
    responses=error_responses(401, 403, 404, 409, 422),
)
async def redeliver(
    webhook_id: UUID, delivery_id: DeliveryId, db: DbDep, actor: AdminDep, audit: AuditDep
) -> dict[str, Any]:
    """Send a finished delivery's event again, as a new delivery (same event id)."""
    return await usecases.redeliver(db, audit.context(actor), webhook_id, delivery_id)
