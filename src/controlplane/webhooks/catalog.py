"""The event types an endpoint can subscribe to, and the one function that raises an event.

Tenant, node and operation events are raised by triggers (migration 0014) in the
transaction of the change itself; billing events by the billing code through `enqueue`.
Another domain adds its group by listing it in `EVENT_TYPES` and calling `enqueue` (or
the SQL function `webhook_enqueue` from a trigger) inside its own transaction.
"""

from __future__ import annotations

import uuid
from typing import Any

from psycopg.types.json import Jsonb

from controlplane.db import Executor

TENANT_STATUSES = ("provisioning", "active", "suspending", "suspended", "resuming", "error",
                   "deleting", "deleted")  # fmt: skip
EVENT_TYPES: dict[str, tuple[str, ...]] = {
    "tenant": ("created", *TENANT_STATUSES),
    "node": (
        "created",
        "online",
        "offline",
        "unknown",
        "maintenance_on",
        "maintenance_off",
        "deleted",
    ),
    "billing": ("subscription_updated", "hold_started", "hold_ended"),
    "operation": ("queued", "running", "succeeded", "failed"),
}


def all_types() -> list[str]:
    return [f"{group}.{name}" for group, names in EVENT_TYPES.items() for name in names]


def check_subscription(value: str) -> str:
    """An exact type (`tenant.active`), a group (`tenant.*`) or `*`; else ValueError."""
    if value == "*":
        return value
    group, _, name = value.partition(".")
    if group in EVENT_TYPES and (name == "*" or name in EVENT_TYPES[group]):
        return value
    raise ValueError(
        f"unknown event type {value!r}: use `*`, a group such as `tenant.*`, or one of "
        + ", ".join(all_types())
    )


async def enqueue(ex: Executor, event_type: str, data: dict[str, Any]) -> uuid.UUID | None:
    """Raise an event in the caller's transaction: stored and queued for every endpoint
    subscribed to it, or nothing at all when none is (the id, or None)."""
    group, _, name = event_type.partition(".")
    assert name in EVENT_TYPES.get(group, ()), f"unlisted event type {event_type}"
    value = await ex.fetch_val(
        "SELECT webhook_enqueue(%(type)s, %(data)s) AS id",
        {"type": event_type, "data": Jsonb(data)},
    )
    return value if value is None else uuid.UUID(str(value))
