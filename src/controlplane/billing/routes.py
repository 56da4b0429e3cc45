"""HTTP for billing: `/api/v1/billing/*` (user JWT) and `/api/v1/stripe/webhook` (Stripe).

Without `STRIPE_SECRET_KEY` and `STRIPE_WEBHOOK_SECRET` every route here answers 503
"billing is not enabled"; tier limits on tenant creation apply either way.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request

from controlplane.auth.deps import UserActorDep, UserDep
from controlplane.billing import service, webhooks
from controlplane.billing.schemas import (
    BillingStatus,
    CheckoutCreate,
    CheckoutPublic,
    PortalPublic,
    WebhookResult,
)
from controlplane.billing.stripe_api import (
    StripeGateway,
    StripeRefused,
    StripeUnavailable,
)
from controlplane.deps import Actor, AuditDep, DbDep, SettingsDep, StateDep
from controlplane.errors import BadRequest
from controlplane.state import Services
from controlplane.web.errors import ApiError, ServiceUnavailable, error_responses

router = APIRouter(tags=["billing"])
DISABLED = "billing is not enabled (set STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET)"
STRIPE_ACTOR = Actor(kind="system", label="stripe")


def _enabled(state: Services) -> StripeGateway:
    gateway = state.stripe_gateway
    if not state.settings.billing_enabled or gateway is None:
        raise ServiceUnavailable(DISABLED)
    return gateway


def require_billing(state: StateDep) -> StripeGateway:
    return _enabled(state)


GatewayDep = Annotated[StripeGateway, Depends(require_billing)]


class BadGateway(ApiError):
    status = 502


async def _stripe(call: Any) -> Any:
    try:
        return await call
    except StripeRefused as exc:
        raise BadGateway(str(exc)) from None
    except StripeUnavailable as exc:
        raise ServiceUnavailable(str(exc)) from None


@router.post(
    "/api/v1/billing/checkout",
    response_model=CheckoutPublic,
    responses=error_responses(400, 401, 409, 422, 502, 503),
    summary="Start a subscription: a Stripe Checkout URL for a tier",
)
async def checkout(
    user: UserDep,  # first: who is asking comes before whether billing is on
    gateway: GatewayDep,
    body: CheckoutCreate,
    actor: UserActorDep,
    db: DbDep,
    settings: SettingsDep,
    audit: AuditDep,
) -> dict[str, Any]:
    """Creates your Stripe customer if needed and a Checkout Session for the tier.

    The tier is granted once Stripe reports the first invoice paid, not before.
    """
    result = await _stripe(service.start_checkout(db, settings, gateway, user, body.tier))
    audit(
        actor,
        "billing.checkout",
        "user",
        user["id"],
        {"tier": result["tier"], "session_id": result["session_id"]},
    )
    return result  # type: ignore[no-any-return]


@router.post(
    "/api/v1/billing/portal",
    response_model=PortalPublic,
    responses=error_responses(401, 409, 502, 503),
    summary="A Stripe customer portal URL: payment method, invoices, plan, cancellation",
)
async def portal(
    user: UserDep, gateway: GatewayDep, db: DbDep, settings: SettingsDep
) -> dict[str, Any]:
    return await _stripe(service.open_portal(db, settings, gateway, user))  # type: ignore[no-any-return]


@router.get(
    "/api/v1/billing/status",
    response_model=BillingStatus,
    responses=error_responses(401, 503),
    summary="Your tier, subscription state and usage against the tier's limits",
)
async def status(user: UserDep, _: GatewayDep, db: DbDep, settings: SettingsDep) -> dict[str, Any]:
    return await service.billing_status(db, settings, user["id"])


@router.post(
    "/api/v1/stripe/webhook",
    response_model=WebhookResult,
    responses=error_responses(400, 503),
    summary="Stripe events (signed with STRIPE_WEBHOOK_SECRET)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
            "description": "A Stripe event, exactly as Stripe sent it",
        }
    },
)
async def stripe_webhook(
    request: Request,
    state: StateDep,
    audit: AuditDep,
    stripe_signature: Annotated[
        str | None, Header(description="t=<unix time>,v1=<HMAC-SHA256 hex>")
    ] = None,
) -> dict[str, Any]:
    """Verifies the signature (300 s tolerance), then processes the event exactly once.

    A redelivered event answers 200 with outcome `duplicate`; a bad or stale signature is a
    400 (Stripe retries it, and shows the message in its dashboard).
    """
    _enabled(state)
    secret = state.settings.stripe_webhook_secret
    assert secret is not None
    try:
        event = webhooks.verify(await request.body(), stripe_signature, secret.get_secret_value())
    except webhooks.BadEvent as exc:
        raise BadRequest(str(exc)) from None
    result = await webhooks.process(state.db, state.settings, event)
    if result.outcome in ("applied", "stale"):
        effects = result.effects.as_details() if result.effects else {}
        audit(
            STRIPE_ACTOR,
            "billing.event",
            "user",
            result.user_id,
            {"event_id": result.event_id, "type": result.type, "outcome": result.outcome} | effects,
        )
    return {"event_id": result.event_id, "type": result.type, "outcome": result.outcome}
