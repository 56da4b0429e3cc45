"""Billing use cases for a signed-in user: checkout, customer portal, status.

The Stripe customer is created on the first checkout (idempotency key per user, so a retry
or a concurrent click gets the same customer) and kept on the user's billing row. A tier is
not granted here: only a paid invoice, reported by the webhook, grants it.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from controlplane.billing.limits import usage_of
from controlplane.billing.standing import standing_of
from controlplane.billing.stripe_api import StripeGateway
from controlplane.billing.tiers import FREE, load_tiers
from controlplane.config import Settings
from controlplane.db import Executor, load_queries
from controlplane.errors import Conflict, Invalid

_Q = load_queries("controlplane.billing")


def billing_url(settings: Settings, configured: str | None) -> str:
    return configured or f"{settings.public_url}/billing"


async def ensure_customer(db: Executor, gateway: StripeGateway, user: dict[str, Any]) -> str:
    account = await db.fetch_one(_Q["account_get"], {"user_id": user["id"]})
    if account is not None and account["stripe_customer_id"]:
        return str(account["stripe_customer_id"])
    customer = await gateway.create_customer(
        email=user["email"],
        user_id=str(user["id"]),
        idempotency_key=f"cp-customer-{user['id']}",
    )
    stored = await db.fetch_val(
        _Q["account_set_customer"], {"user_id": user["id"], "customer": customer}
    )
    return str(stored)


async def start_checkout(
    db: Executor,
    settings: Settings,
    gateway: StripeGateway,
    user: dict[str, Any],
    tier_name: str,
) -> dict[str, Any]:
    """A subscription Checkout Session for `tier_name`; returns its id and URL."""
    tiers = await load_tiers(db, settings)
    tier = tiers.named(tier_name)
    buyable = [t.name for t in tiers.all if t.public()["purchasable"]]
    if tier is None:
        raise Invalid(
            f"no tier named {tier_name!r}; tiers you can buy: {', '.join(buyable) or 'none'}",
            field="tier",
        )
    if tier.name == FREE:
        raise Invalid("the free tier needs no subscription", field="tier")
    if tier.stripe_price_id is None:
        raise Invalid(
            f"tier {tier.name!r} has no Stripe price yet (the operator sets stripe_price_id)",
            field="tier",
        )
    standing = await standing_of(db, settings, user["id"])
    if standing.entitled:
        raise Conflict(
            f"you already have a subscription (the {standing.tier.name} tier); "
            "change or cancel it in the customer portal (POST /api/v1/billing/portal)"
        )
    customer = await ensure_customer(db, gateway, user)
    # The same user, tier and price within one minute (a double click, a client retry)
    # get the same session back from Stripe instead of a second one.
    window = int(time.time()) // 60
    session_id, url = await gateway.create_checkout_session(
        customer=customer,
        price=tier.stripe_price_id,
        user_id=str(user["id"]),
        tier=tier.name,
        success_url=billing_url(settings, settings.billing_success_url),
        cancel_url=billing_url(settings, settings.billing_cancel_url),
        idempotency_key=f"cp-checkout-{user['id']}-{tier.stripe_price_id}-{window}",
    )
    return {"session_id": session_id, "url": url, "tier": tier.name, "customer": customer}


async def open_portal(
    db: Executor, settings: Settings, gateway: StripeGateway, user: dict[str, Any]
) -> dict[str, Any]:
    account = await db.fetch_one(_Q["account_get"], {"user_id": user["id"]})
    if account is None or not account["stripe_customer_id"]:
        raise Conflict(
            "you have no billing account yet: subscribe first (POST /api/v1/billing/checkout)"
        )
    url = await gateway.create_portal_session(
        customer=account["stripe_customer_id"],
        return_url=billing_url(settings, settings.billing_portal_return_url),
        idempotency_key=f"cp-portal-{user['id']}-{uuid.uuid4()}",
    )
    return {"url": url}


async def billing_status(db: Executor, settings: Settings, user_id: uuid.UUID) -> dict[str, Any]:
    standing = await standing_of(db, settings, user_id)
    usage = await usage_of(db, user_id)
    sub = standing.subscription
    return {
        "tier": standing.tier.public(),
        "usage": usage,
        "limits": {
            "max_tenants": standing.tier.max_tenants,
            "max_ram_mb": standing.tier.max_ram_mb,
        },
        "subscription": None
        if sub is None
        else {
            "id": sub["id"],
            "status": sub["status"],
            "paid": sub["paid_at"] is not None,
            "current_period_end": sub["current_period_end"],
            "grace_until": sub["grace_until"],
        },
        "on_hold": standing.hold,
        "hold_reason": standing.hold_reason,
        "tiers": [t.public() for t in standing.tiers.all],
    }
