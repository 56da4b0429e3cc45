"""A user's standing: the tier they have now, and whether billing holds their tenants.

Derived on every read from the subscriptions as Stripe's events last described them and the
tiers in the system settings, so a tier edited on the settings page applies at once and
nothing is stored twice:

- a subscription *entitles* its user once an invoice of it was paid, while it is `active`
  or `trialing`, or `past_due` for less than `BILLING_GRACE_DAYS`;
- the tier is that of the entitling subscription's price (the best one, if several), else
  the free tier;
- billing *holds* (suspends) a user's tenants when they have paid before and nothing
  entitles them any more: the subscription was canceled, or stayed past due too long.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controlplane.billing.tiers import Tier, Tiers, load_tiers
from controlplane.config import Settings
from controlplane.db import Executor, load_queries

log = logging.getLogger(__name__)
_Q = load_queries("controlplane.billing")


@dataclass(frozen=True)
class Standing:
    tier: Tier
    tiers: Tiers
    subscription: dict[str, Any] | None  # the entitling one, else the newest
    entitled: bool
    hold: bool
    hold_reason: str | None
    grace_until: datetime | None


def grace_seconds(settings: Settings) -> float:
    return settings.billing_grace_days * 86_400.0


def _hold_reason(sub: dict[str, Any]) -> str:
    status = sub["status"]
    if status == "canceled":
        return "your subscription was canceled"
    if status == "past_due":
        return "your payment is past due and the grace period is over"
    return f"your subscription is {status}"


def judge(subs: list[dict[str, Any]], tiers: Tiers) -> Standing:
    """The standing from `subscriptions_of_user` rows (newest first)."""
    entitling = [s for s in subs if s["entitled"]]
    tier = tiers.free
    chosen: dict[str, Any] | None = subs[0] if subs else None
    if entitling:
        chosen = entitling[0]
        ranked = []
        for sub in entitling:
            found = tiers.for_price(sub["price_id"])
            if found is None:
                log.warning(
                    "subscription %s has price %s, which no billing tier names; "
                    "the free tier's limits apply",
                    sub["id"],
                    sub["price_id"],
                )
                continue
            ranked.append((found.max_tenants, found.max_ram_mb, found, sub))
        if ranked:
            _, _, tier, chosen = max(ranked, key=lambda r: (r[0], r[1]))
    paid = [s for s in subs if s["paid_at"] is not None]
    hold = bool(paid) and not entitling
    return Standing(
        tier=tier,
        tiers=tiers,
        subscription=chosen,
        entitled=bool(entitling),
        hold=hold,
        hold_reason=_hold_reason(paid[0]) if hold else None,
        grace_until=chosen.get("grace_until") if chosen else None,
    )


async def standing_of(db: Executor, settings: Settings, user_id: uuid.UUID) -> Standing:
    subs = await db.fetch_all(
        _Q["subscriptions_of_user"], {"user_id": user_id, "grace_s": grace_seconds(settings)}
    )
    return judge(subs, await load_tiers(db, settings))
