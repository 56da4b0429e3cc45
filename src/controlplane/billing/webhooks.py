"""Stripe webhook events: verified, recorded once, processed exactly once.

`verify(payload, header, secret)` checks the `Stripe-Signature` header with the SDK (HMAC
SHA-256 over `{t}.{body}`, 300 s tolerance) and returns the event as a dict.
`process(db, settings, event)` inserts the event id (ON CONFLICT DO NOTHING) in the same
transaction as the event's effects: a redelivery, even a concurrent one, does nothing.

Events can arrive twice, late or out of order, so none of them is taken as "what happens
next". Each one updates the subscription it is about only if it is newer (its `created`)
than what was applied before, and then the user's standing is recomputed from the
subscriptions and applied to their tenants (`holds.enforce`):

| event                                            | effect                                    |
| ------------------------------------------------ | ----------------------------------------- |
| checkout.session.completed                       | links the customer to the user (if new)   |
| customer.subscription.created/updated/deleted/.. | the subscription's status, price, period  |
| invoice.paid, invoice.payment_succeeded          | the subscription is paid: the tier counts |
| anything else                                    | recorded, no effect                       |
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from controlplane.billing.holds import Effects, enforce
from controlplane.config import Settings
from controlplane.db import Executor, load_queries
from controlplane.users import service as users
from controlplane.webhooks.catalog import enqueue

log = logging.getLogger(__name__)
_Q = load_queries("controlplane.billing")

TOLERANCE_S = 300  # what Stripe's libraries use
PAID = frozenset({"invoice.paid", "invoice.payment_succeeded"})


class BadEvent(Exception):
    """The request is not a verified Stripe event; the message says why."""


@dataclass
class Outcome:
    event_id: str
    type: str
    outcome: str  # applied | stale | duplicate | ignored: ...
    user_id: uuid.UUID | None = None
    effects: Effects | None = None


def _signed_at(header: str) -> int:
    """The `t=` of a header the SDK has accepted (so it is there and an integer)."""
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            return int(value)
    raise BadEvent("invalid Stripe-Signature: no timestamp")


def verify(payload: bytes, header: str | None, secret: str) -> dict[str, Any]:
    if not header:
        raise BadEvent("missing Stripe-Signature header")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise BadEvent("the body is not UTF-8") from None
    import stripe  # here, not at start-up: most deployments never bill (BENCHMARKS.md P4)

    try:
        stripe.WebhookSignature.verify_header(text, header, secret, TOLERANCE_S)
    except stripe.SignatureVerificationError as exc:
        raise BadEvent(f"invalid Stripe-Signature: {exc.user_message or exc}") from None
    # The SDK refuses only timestamps too far in the past; one too far ahead would stay
    # valid (replayable) until long after it was made.
    ahead = _signed_at(header) - int(time.time())
    if ahead > TOLERANCE_S:
        raise BadEvent(
            f"invalid Stripe-Signature: the signature's timestamp is {ahead} s in the future"
            f" (tolerance {TOLERANCE_S} s)"
        )
    try:
        event = json.loads(text)
    except ValueError:
        raise BadEvent("the body is not JSON") from None
    if not (
        isinstance(event, dict)
        and isinstance(event.get("id"), str)
        and event["id"]
        and isinstance(event.get("type"), str)
        and isinstance(event.get("created"), int)
        and isinstance(event.get("data"), dict)
        and isinstance(event["data"].get("object"), dict)
    ):
        raise BadEvent("not a Stripe event: id, type, created and data.object are required")
    return event


def _id(value: Any) -> str | None:
    """An id field, which Stripe sends as a string or, when expanded, as an object."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _price_of_subscription(sub: dict[str, Any]) -> str | None:
    items = (sub.get("items") or {}).get("data") or []
    return _id(items[0].get("price")) if items else None


def _period_end(sub: dict[str, Any]) -> int | None:
    # Top level before API version 2025-03-31; on each item since.
    end = sub.get("current_period_end")
    if end is None:
        items = (sub.get("items") or {}).get("data") or []
        end = items[0].get("current_period_end") if items else None
    return end if isinstance(end, int) else None


def _invoice_subscription(invoice: dict[str, Any]) -> str | None:
    # `subscription` before API version 2025-03-31; `parent.subscription_details` since.
    found = _id(invoice.get("subscription"))
    if found is None:
        details = (invoice.get("parent") or {}).get("subscription_details") or {}
        found = _id(details.get("subscription"))
    return found


def _invoice_price(invoice: dict[str, Any]) -> str | None:
    for line in (invoice.get("lines") or {}).get("data") or []:
        price = _id(line.get("price"))
        if price is None:
            price = _id(((line.get("pricing") or {}).get("price_details") or {}).get("price"))
        if price is not None:
            return price
    return None


async def process(db: Executor, settings: Settings, event: dict[str, Any]) -> Outcome:
    """Record the event and apply its effects, all in one transaction."""
    result = Outcome(event_id=event["id"], type=event["type"], outcome="duplicate")
    async with db.transaction() as tx:
        inserted = await tx.fetch_val(
            _Q["event_insert"],
            {"id": event["id"], "type": event["type"], "created": event["created"]},
        )
        if inserted is None:
            return result
        await _apply(tx, settings, event, result)
        await tx.execute(
            _Q["event_outcome"],
            {"id": event["id"], "outcome": result.outcome, "user_id": result.user_id},
        )
    return result


async def _apply(tx: Executor, settings: Settings, event: dict[str, Any], out: Outcome) -> None:
    kind, obj, at = event["type"], event["data"]["object"], event["created"]
    if kind == "checkout.session.completed":
        await _link_checkout(tx, obj, out)
        return
    if kind.startswith("customer.subscription."):
        sub_id, query = _id(obj.get("id")), _Q["subscription_apply"]
        params = {
            "status": obj.get("status"),
            "price": _price_of_subscription(obj),
            "period_end": _period_end(obj),
        }
        if not isinstance(params["status"], str):
            out.outcome = "ignored: no subscription status"
            return
    elif kind in PAID:
        sub_id, query = _invoice_subscription(obj), _Q["subscription_paid"]
        params = {"price": _invoice_price(obj)}
        if sub_id is None:
            out.outcome = "ignored: not a subscription invoice"
            return
    else:
        out.outcome = "ignored: event type not used"
        return
    customer = _id(obj.get("customer"))
    account = (
        await tx.fetch_one(_Q["account_by_customer_lock"], {"customer": customer})
        if customer
        else None
    )
    if account is None or sub_id is None:
        out.outcome = "ignored: unknown customer"
        log.warning("Stripe event %s for unknown customer %s", event["id"], customer)
        return
    out.user_id = account["user_id"]
    applied = await tx.fetch_one(
        query,
        {"id": sub_id, "user_id": out.user_id, "customer": customer, "at": at, **params},
    )
    out.outcome = "applied" if applied is not None else "stale"
    if applied is not None:
        await enqueue(tx, "billing.subscription_updated",
                      {"user_id": str(out.user_id), "subscription_id": sub_id,
                       "stripe_event_type": kind, **{k: v for k, v in params.items()
                                                     if k in ("status", "price")}})  # fmt: skip
    _, out.effects = await enforce(tx, settings, out.user_id)


async def _link_checkout(tx: Executor, session: dict[str, Any], out: Outcome) -> None:
    """A completed checkout names our user; keep its customer if the user has none yet."""
    customer = _id(session.get("customer"))
    try:
        user_id = uuid.UUID(str(session.get("client_reference_id")))
    except ValueError:
        out.outcome = "ignored: no user reference"
        return
    if customer is None or await users.user_for_token(tx, user_id) is None:
        out.outcome = "ignored: unknown user"
        return
    other = await tx.fetch_one(_Q["account_by_customer_lock"], {"customer": customer})
    if other is not None and other["user_id"] != user_id:
        out.outcome = "ignored: the customer belongs to another user"
        return
    out.user_id = user_id
    stored = await tx.fetch_val(
        _Q["account_set_customer"], {"user_id": user_id, "customer": customer}
    )
    out.outcome = "applied" if stored == customer else "ignored: user has another customer"
