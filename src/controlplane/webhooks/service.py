"""Rules for webhook endpoints: one endpoint per URL, the secret sealed and shown once,
redelivery only of a finished delivery."""

from __future__ import annotations

import uuid
from typing import Any

from controlplane.crypto import Sealer, random_token
from controlplane.db import ConstraintViolation, Executor, load_queries
from controlplane.errors import Conflict, NotFound
from controlplane.webhooks.schemas import WebhookCreate, WebhookUpdate

Q = load_queries("controlplane.webhooks")
TABLE, SECRET_COLUMN = "webhook_endpoints", "secret_sealed"


def _conflict(exc: ConstraintViolation) -> Conflict:
    if exc.constraint == "webhook_endpoints_url_key":
        return Conflict("another webhook endpoint has this URL", field="url")
    return Conflict(f"conflicts with an existing webhook endpoint: {exc}")


def open_secret(sealer: Sealer, endpoint_id: uuid.UUID, sealed: str) -> str:
    return sealer.open(sealed, table=TABLE, column=SECRET_COLUMN, row_id=endpoint_id)


async def get_webhook(db: Executor, endpoint_id: uuid.UUID) -> dict[str, Any]:
    row = await db.fetch_one(Q["webhook_get"], {"id": endpoint_id})
    if row is None:
        raise NotFound(f"webhook endpoint {endpoint_id} not found")
    return row


async def list_webhooks(db: Executor, *, limit: int, offset: int) -> dict[str, Any]:
    row = await db.fetch_one(Q["webhook_page"], {"limit": limit, "offset": offset})
    assert row is not None
    return {"items": row["items"], "total": row["total"], "limit": limit, "offset": offset}


async def create_webhook(db: Executor, sealer: Sealer, data: WebhookCreate) -> dict[str, Any]:
    """The new endpoint with its secret (`secret`), which is never readable again."""
    endpoint_id = uuid.uuid4()
    secret = "whsec_" + random_token(32)
    sealed = sealer.seal(secret, table=TABLE, column=SECRET_COLUMN, row_id=endpoint_id)
    try:
        row = await db.fetch_one(
            Q["webhook_insert"],
            {**data.model_dump(), "id": endpoint_id, "secret_sealed": sealed},
        )
    except ConstraintViolation as exc:
        raise _conflict(exc) from None
    assert row is not None
    return {**row, "secret": secret}


async def update_webhook(
    db: Executor, endpoint_id: uuid.UUID, data: WebhookUpdate
) -> dict[str, Any]:
    params: dict[str, Any] = dict.fromkeys(WebhookUpdate.model_fields)
    params.update(data.model_dump(exclude_unset=True))
    params["id"] = endpoint_id
    try:
        row = await db.fetch_one(Q["webhook_update"], params)
    except ConstraintViolation as exc:
        raise _conflict(exc) from None
    if row is None:
        raise NotFound(f"webhook endpoint {endpoint_id} not found")
    return row


async def delete_webhook(db: Executor, endpoint_id: uuid.UUID) -> None:
    """The endpoint goes with its delivery log; nothing more is sent to it."""
    if await db.fetch_one(Q["webhook_delete"], {"id": endpoint_id}) is None:
        raise NotFound(f"webhook endpoint {endpoint_id} not found")


async def list_deliveries(
    db: Executor, endpoint_id: uuid.UUID, *, state: str | None, limit: int, offset: int
) -> dict[str, Any]:
    await get_webhook(db, endpoint_id)
    row = await db.fetch_one(
        Q["delivery_page"],
        {"endpoint_id": endpoint_id, "state": state, "limit": limit, "offset": offset},
    )
    assert row is not None
    return {"items": row["items"], "total": row["total"], "limit": limit, "offset": offset}


async def get_delivery(db: Executor, endpoint_id: uuid.UUID, delivery_id: int) -> dict[str, Any]:
    row = await db.fetch_one(Q["delivery_get"], {"id": delivery_id, "endpoint_id": endpoint_id})
    if row is None:
        raise NotFound(f"delivery {delivery_id} of webhook endpoint {endpoint_id} not found")
    return row


async def redeliver(db: Executor, endpoint_id: uuid.UUID, delivery_id: int) -> dict[str, Any]:
    """Queue the event of a finished delivery once more: a new delivery, at once."""
    endpoint = await get_webhook(db, endpoint_id)
    original = await get_delivery(db, endpoint_id, delivery_id)
    if not endpoint["enabled"]:
        raise Conflict("the endpoint is disabled; enable it first", field="enabled")
    if original["state"] == "pending":
        raise Conflict(f"delivery {delivery_id} is still pending; it will be retried")
    new_id = await db.fetch_val(Q["delivery_redeliver"], {"id": delivery_id,
                                                          "endpoint_id": endpoint_id})  # fmt: skip
    if new_id is None:
        raise Conflict(f"a redelivery of delivery {delivery_id} is already pending")
    await db.execute("SELECT pg_notify('cp_webhooks', '')")
    return await get_delivery(db, endpoint_id, int(new_id))
