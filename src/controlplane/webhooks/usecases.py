"""The webhook use cases the admin API and the dashboard share, each with its audit entry.

The secret is never in an entry: only what the operator set.
"""

from __future__ import annotations

import uuid
from typing import Any

from controlplane.audit.context import AuditContext
from controlplane.crypto import Sealer
from controlplane.db import Executor
from controlplane.errors import Invalid
from controlplane.webhooks import service, targets
from controlplane.webhooks.schemas import WebhookCreate, WebhookUpdate


def _check_target(url: str | None, allow_private: bool) -> None:
    if url is None or allow_private:
        return
    refusal = targets.written_refusal(url)
    if refusal is not None:
        raise Invalid(f"url {refusal}", field="url")


async def create_webhook(
    db: Executor,
    sealer: Sealer,
    audit: AuditContext,
    data: WebhookCreate,
    *,
    allow_private: bool,
) -> dict[str, Any]:
    _check_target(data.url, allow_private)
    row = await service.create_webhook(db, sealer, data)
    audit.record("webhook.create", "webhook", row["id"], data.model_dump())
    return row


async def update_webhook(
    db: Executor,
    audit: AuditContext,
    endpoint_id: uuid.UUID,
    data: WebhookUpdate,
    *,
    allow_private: bool,
) -> dict[str, Any]:
    _check_target(data.url, allow_private)
    row = await service.update_webhook(db, endpoint_id, data)
    audit.record("webhook.update", "webhook", endpoint_id, data.model_dump(exclude_unset=True))
    return row


async def delete_webhook(db: Executor, audit: AuditContext, endpoint_id: uuid.UUID) -> None:
    await service.delete_webhook(db, endpoint_id)
    audit.record("webhook.delete", "webhook", endpoint_id)


async def redeliver(
    db: Executor, audit: AuditContext, endpoint_id: uuid.UUID, delivery_id: int
) -> dict[str, Any]:
    row = await service.redeliver(db, endpoint_id, delivery_id)
    audit.record("webhook.redeliver", "webhook", endpoint_id,
                 {"delivery": delivery_id, "new_delivery": row["id"],
                  "event_id": str(row["event_id"])})  # fmt: skip
    return row
