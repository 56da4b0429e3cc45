"""Make a user's tenants match their billing standing.

On hold (canceled, or past due beyond the grace period) the user falls to the free tier:
with `BILLING_HOLD_POLICY=excess` (the default) only the tenants beyond the free tier's
limits are suspended, newest first, keeping the oldest that fit; with `all`, every one.
Each is suspended with `by="billing"`. A billing-suspended tenant that fits again (tiers
edited, another tenant deleted) is resumed. Not on hold: every tenant that billing
suspended is resumed (with `by="billing"`, so a tenant its owner or an admin suspended
stays suspended), which is exactly those the hold took. Tenants in the middle of another
transition are left for the next sweep, which calls this again.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field

from controlplane.billing.standing import Standing, standing_of
from controlplane.config import Settings
from controlplane.db import Executor, load_queries
from controlplane.errors import Conflict
from controlplane.tenants import service as tenants
from controlplane.webhooks.catalog import enqueue

log = logging.getLogger(__name__)
_Q = load_queries("controlplane.billing")


@dataclass
class Effects:
    hold_changed: bool = False
    suspended: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)

    def as_details(self) -> dict[str, object]:
        return {"suspended": self.suspended, "resumed": self.resumed}


def hold_limits(settings: Settings, standing: Standing) -> dict[str, object]:
    """The parameters of `tenants_on_hold` (and the sweep's query) for the policy."""
    free = standing.tiers.free
    return {
        "all": settings.billing_hold_policy == "all",
        "max_tenants": free.max_tenants,
        "max_ram": free.max_ram_mb,
    }


async def enforce(db: Executor, settings: Settings, user_id: uuid.UUID) -> tuple[Standing, Effects]:
    """Apply the user's standing to their tenants. The caller holds the account lock."""
    standing = await standing_of(db, settings, user_id)
    effects = Effects()
    changed = await db.fetch_one(
        _Q["account_set_hold"],
        {"user_id": user_id, "hold": standing.hold, "reason": standing.hold_reason},
    )
    effects.hold_changed = changed is not None
    if standing.hold:
        rows = await db.fetch_all(
            _Q["tenants_on_hold"], {"user_id": user_id, **hold_limits(settings, standing)}
        )
        for row in rows:  # newest first
            try:
                if row["excess"] and row["status"] == "active":
                    await tenants.request_suspend(db, row["id"], by="billing")
                    effects.suspended.append(str(row["id"]))
                elif (not row["excess"] and row["status"] == "suspended"
                      and row["suspended_by"] == "billing"):  # fmt: skip
                    await tenants.request_resume(db, row["id"], by="billing")
                    effects.resumed.append(str(row["id"]))
            except Conflict:
                continue  # it moved on meanwhile; the next sweep looks again
    else:
        for row in await db.fetch_all(_Q["tenants_to_resume"], {"user_id": user_id}):
            try:
                await tenants.request_resume(db, row["id"], by="billing")
            except Conflict:
                continue
            effects.resumed.append(str(row["id"]))
    if effects.hold_changed:
        await enqueue(
            db,
            "billing.hold_started" if standing.hold else "billing.hold_ended",
            {"user_id": str(user_id), "reason": standing.hold_reason, **effects.as_details()},
        )
    if effects.suspended or effects.resumed:
        log.info(
            "billing %s tenants of user %s",
            "suspended" if standing.hold else "resumed",
            user_id,
            extra={"user_id": str(user_id), **effects.as_details()},
        )
    return standing, effects
