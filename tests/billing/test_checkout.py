"""`/api/v1/billing/checkout`, `/portal`, `/status` through the SDK to the Stripe stand-in."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.billing.conftest import (
    checkout,
    create_tenant,
    customer_of,
    deliver_ok,
    event,
    invoice,
    new_user,
    subscription,
)
from tests.billing.fakestripe import FakeStripe
from tests.conftest import flush_audit


async def test_checkout_creates_the_customer_once_and_a_session(
    client: httpx.AsyncClient, app: Any, fake_stripe: FakeStripe, tiers: list
) -> None:
    ada = await new_user(client, "ada@example.com")
    result = await checkout(client, ada, "basic")
    assert result["tier"] == "basic"
    assert result["url"] == f"https://checkout.stripe.test/c/pay/{result['session_id']}"
    (created,) = fake_stripe.posts("/v1/customers")
    assert created.params == {"email": "ada@example.com", "metadata[user_id]": ada["id"]}
    assert created.idempotency_key == f"cp-customer-{ada['id']}"
    assert created.authorization == f"Bearer {fake_stripe.api_key}"
    customer = await customer_of(app, ada)
    assert customer == fake_stripe.customers[customer]["id"]
    (session,) = fake_stripe.posts("/v1/checkout/sessions")
    assert session.params == {
        "mode": "subscription",
        "customer": customer,
        "client_reference_id": ada["id"],
        "line_items[0][price]": "price_basic",
        "line_items[0][quantity]": "1",
        "success_url": "https://app.example.test/billing/done",
        "cancel_url": "https://cp.example.test/billing",
        "metadata[user_id]": ada["id"],
        "metadata[tier]": "basic",
        "subscription_data[metadata][user_id]": ada["id"],
        "subscription_data[metadata][tier]": "basic",
    }
    assert session.idempotency_key and session.idempotency_key.startswith(
        f"cp-checkout-{ada['id']}-price_basic-"
    )
    # Changing one's mind: another tier, the same customer (no second customer created).
    again = await checkout(client, ada, "pro")
    assert again["session_id"] != result["session_id"]
    assert len(fake_stripe.posts("/v1/customers")) == 1
    assert fake_stripe.posts("/v1/checkout/sessions")[-1].params["customer"] == customer
    # Nothing is granted by a checkout alone.
    status = (await client.get("/api/v1/billing/status", headers=ada["headers"])).json()
    assert status["tier"]["name"] == "free" and status["subscription"] is None
    await flush_audit(app)
    actions = await app.state.cp.db.fetch_all(
        "SELECT actor, details FROM audit_log WHERE action = 'billing.checkout' ORDER BY id"
    )
    assert [(a["actor"], a["details"]["tier"]) for a in actions] == [
        (f"user:{ada['id']}", "basic"),
        (f"user:{ada['id']}", "pro"),
    ]


async def test_checkout_refusals(
    client: httpx.AsyncClient,
    stripe_client: httpx.AsyncClient,
    app: Any,
    fake_stripe: FakeStripe,
    tiers: list,
) -> None:
    ada = await new_user(client, "ada@example.com")
    for body, status, text in [
        ({"tier": "gold"}, 422, "no tier named 'gold'; tiers you can buy: basic, pro"),
        ({"tier": "free"}, 422, "the free tier needs no subscription"),
        ({"tier": "team"}, 422, "tier 'team' has no Stripe price yet"),
        ({"tier": "Bad Name"}, 422, "tier"),
        ({"tier": "basic", "coupon": "x"}, 422, "coupon"),
        ({}, 422, "tier"),
    ]:
        r = await client.post("/api/v1/billing/checkout", json=body, headers=ada["headers"])
        assert r.status_code == status, (body, r.text)
        assert text in r.json()["error"]["message"], r.text
        assert "tier" in str(r.json()["error"]["fields"]) or "coupon" in text
    assert fake_stripe.requests == []
    r = await client.post("/api/v1/billing/checkout", json={"tier": "basic"})
    assert r.status_code == 401
    # Stripe refuses (the price was deleted there): 502 with Stripe's message.
    fake_stripe.prices.discard("price_basic")
    r = await client.post(
        "/api/v1/billing/checkout", json={"tier": "basic"}, headers=ada["headers"]
    )
    assert r.status_code == 502
    assert r.json()["error"]["message"] == (
        "Stripe refused the request: No such price: 'price_basic'"
    )
    # Stripe fails and says not to retry: 503.
    fake_stripe.fail_next.append((500, "api_error", "Something went wrong", False))
    r = await client.post("/api/v1/billing/checkout", json={"tier": "pro"}, headers=ada["headers"])
    assert r.status_code == 503 and "Something went wrong" in r.json()["error"]["message"]
    # A failure Stripe marks retryable is retried by the SDK with the same idempotency key.
    fake_stripe.fail_next.append((500, "api_error", "lock timeout", True))
    before = len(fake_stripe.requests)
    await checkout(client, ada, "pro")
    tries = fake_stripe.requests[before:]
    assert [t.path for t in tries] == ["/v1/checkout/sessions"] * 2
    assert tries[0].idempotency_key == tries[1].idempotency_key
    # Already subscribed: use the portal instead.
    customer = await customer_of(app, ada)
    await deliver_ok(
        stripe_client, event("invoice.paid", invoice("sub_a", customer), int(time.time()))
    )
    r = await client.post("/api/v1/billing/checkout", json={"tier": "pro"}, headers=ada["headers"])
    assert r.status_code == 409 and "customer portal" in r.json()["error"]["message"]


async def test_portal_and_status(
    client: httpx.AsyncClient,
    stripe_client: httpx.AsyncClient,
    app: Any,
    fake_stripe: FakeStripe,
    cluster: dict,
    tiers: list,
) -> None:
    ada = await new_user(client, "ada@example.com")
    r = await client.post("/api/v1/billing/portal", headers=ada["headers"])
    assert r.status_code == 409 and "subscribe first" in r.json()["error"]["message"]
    assert (await client.post("/api/v1/billing/portal")).status_code == 401
    assert (await client.get("/api/v1/billing/status")).status_code == 401

    status = (await client.get("/api/v1/billing/status", headers=ada["headers"])).json()
    assert status["tier"]["name"] == "free"
    assert status["limits"] == {"max_tenants": 1, "max_ram_mb": 1024}
    assert status["usage"] == {"tenants": 0, "ram_mb": 0}
    assert [(t["name"], t["purchasable"]) for t in status["tiers"]] == [
        ("free", False),
        ("basic", True),
        ("pro", True),
        ("team", False),
    ]
    assert "stripe_price_id" not in status["tiers"][1]

    await checkout(client, ada, "pro")
    customer = await customer_of(app, ada)
    r = await client.post("/api/v1/billing/portal", headers=ada["headers"])
    assert r.status_code == 200, r.text
    assert r.json()["url"].startswith("https://billing.stripe.test/p/session/bps_")
    (portal,) = fake_stripe.posts("/v1/billing_portal/sessions")
    assert portal.params == {"customer": customer, "return_url": "https://cp.example.test/billing"}
    assert portal.idempotency_key

    now = int(time.time())
    end = now + 30 * 86400
    sub = subscription("sub_ada", customer, "active", "price_pro", period_end=end)
    await deliver_ok(stripe_client, event("customer.subscription.created", sub, now))
    await deliver_ok(
        stripe_client, event("invoice.payment_succeeded", invoice("sub_ada", customer), now)
    )
    assert (await create_tenant(client, ada, "one", project="big")).status_code == 202
    status = (await client.get("/api/v1/billing/status", headers=ada["headers"])).json()
    assert status["tier"]["name"] == "pro"
    assert status["limits"] == {"max_tenants": 10, "max_ram_mb": 8192}
    assert status["usage"] == {"tenants": 1, "ram_mb": 1536}
    sub_status = status["subscription"]
    assert sub_status["id"] == "sub_ada" and sub_status["status"] == "active"
    assert sub_status["paid"] is True and sub_status["grace_until"] is None
    assert sub_status["current_period_end"].startswith(
        time.strftime("%Y-%m-%dT%H:%M", time.gmtime(end))
    )
    assert status["on_hold"] is False and status["hold_reason"] is None
