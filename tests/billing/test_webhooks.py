"""`/api/v1/stripe/webhook`: signatures, exactly-once, order independence, grace, holds."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from typing import Any

import httpx
import pytest

from controlplane.billing.sweep import billing_sweeper, stripe_gateway, sweep_once
from tests.billing.conftest import (
    WHSEC,
    checkout,
    create_tenant,
    customer_of,
    deliver,
    deliver_ok,
    event,
    invoice,
    new_user,
    set_status,
    sign,
    statuses,
    subscription,
)
from tests.conftest import flush_audit

DAY = 86_400


async def _events(app: Any) -> list[dict[str, Any]]:
    return await app.state.cp.db.fetch_all(
        "SELECT id, type, outcome FROM stripe_events ORDER BY received_at, id"
    )


async def _status(client: httpx.AsyncClient, user: dict[str, Any]) -> dict[str, Any]:
    r = await client.get("/api/v1/billing/status", headers=user["headers"])
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_signatures_are_verified(stripe_client: httpx.AsyncClient, app: Any) -> None:
    evt = event("customer.created", {"id": "cus_x", "object": "customer"}, int(time.time()))
    payload = json.dumps(evt)
    now = int(time.time())
    cases = [
        ({}, "missing Stripe-Signature header"),
        ({"Stripe-Signature": sign(payload, "whsec_someoneelse")}, "No signatures found"),
        ({"Stripe-Signature": "t=123,v0=abc"}, "No signatures found"),
        ({"Stripe-Signature": "garbage"}, "Unable to extract timestamp and signatures"),
        (
            {"Stripe-Signature": sign(payload, timestamp=now - 301)},
            "Timestamp outside the tolerance zone",
        ),
        (  # a signature made for later (a stolen key, a replay store): refused too
            {"Stripe-Signature": sign(payload, timestamp=now + 3600)},
            "s in the future (tolerance 300 s)",
        ),
    ]
    for headers, message in cases:
        r = await stripe_client.post("/api/v1/stripe/webhook", content=payload, headers=headers)
        assert r.status_code == 400, (headers, r.text)
        assert r.json()["error"]["message"].startswith(
            "invalid Stripe-Signature" if headers else message
        ), r.text
        assert message in r.json()["error"]["message"]
    # A tampered body under a genuine signature.
    header = sign(payload)
    tampered = payload.replace("cus_x", "cus_y")
    r = await stripe_client.post(
        "/api/v1/stripe/webhook", content=tampered, headers={"Stripe-Signature": header}
    )
    assert r.status_code == 400 and "No signatures found" in r.text
    # Signed, but not an event.
    for body in ('{"hello": "world"}', "[1, 2]", "not json"):
        r = await stripe_client.post(
            "/api/v1/stripe/webhook", content=body, headers={"Stripe-Signature": sign(body)}
        )
        assert r.status_code == 400, r.text
    assert await _events(app) == []
    # Within the tolerance, and with a second (rotated) secret's signature first: accepted.
    t = now - 290
    rotated = sign(payload, "whsec_oldsecret", t).split(",")[1]
    r = await stripe_client.post(
        "/api/v1/stripe/webhook",
        content=payload,
        headers={"Stripe-Signature": f"{sign(payload, WHSEC, t)},{rotated}"},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "received": True,
        "event_id": evt["id"],
        "type": "customer.created",
        "outcome": "ignored: event type not used",
    }
    # A replay of the same event (same id) is recorded once and does nothing.
    r = await deliver(stripe_client, evt)
    assert r.status_code == 200 and r.json()["outcome"] == "duplicate"
    assert [e["id"] for e in await _events(app)] == [evt["id"]]


@pytest.mark.parametrize("hold_policy", ["all"])
async def test_lifecycle_grace_suspend_and_resume(
    client: httpx.AsyncClient,
    stripe_client: httpx.AsyncClient,
    app: Any,
    cluster: dict,
    tiers: list,
) -> None:
    db, settings = app.state.cp.db, app.state.cp.settings
    ada = await new_user(client, "ada@example.com")
    await checkout(client, ada, "basic")
    customer = await customer_of(app, ada)
    t0 = int(time.time()) - 20 * DAY
    # Checkout completed, subscription created but not yet paid: nothing granted.
    done = {"id": "cs_1", "object": "checkout.session", "customer": customer}
    done |= {"client_reference_id": ada["id"], "subscription": "sub_1", "mode": "subscription"}
    assert await deliver_ok(stripe_client, event("checkout.session.completed", done, t0)) == (
        "applied"
    )
    sub = subscription("sub_1", customer, "incomplete")
    await deliver_ok(stripe_client, event("customer.subscription.created", sub, t0))
    assert (await _status(client, ada))["tier"]["name"] == "free"
    # Paid: the basic tier.
    paid = event("invoice.paid", invoice("sub_1", customer, old_shape=True), t0 + 1)
    assert await deliver_ok(stripe_client, paid) == "applied"
    assert (await deliver(stripe_client, paid)).json()["outcome"] == "duplicate"
    for name in ("a", "b"):
        r = await create_tenant(client, ada, name)
        assert r.status_code == 202
        await set_status(app, r.json()["id"], "active")
    r = await create_tenant(client, ada, "mine")
    await set_status(app, r.json()["id"], "active")
    r = await client.post(f"/api/v1/user/tenants/{r.json()['id']}/suspend", headers=ada["headers"])
    assert r.status_code == 202
    await set_status(app, r.json()["id"], "suspended")

    # Payment fails: past_due starts the grace period; the tier and the tenants stay.
    t_due = int(time.time()) - 2 * DAY
    due = subscription("sub_1", customer, "past_due")
    await deliver_ok(stripe_client, event("customer.subscription.updated", due, t_due))
    status = await _status(client, ada)
    assert status["tier"]["name"] == "basic" and status["subscription"]["status"] == "past_due"
    assert status["subscription"]["grace_until"].startswith(
        time.strftime("%Y-%m-%dT%H:%M", time.gmtime(t_due + 7 * DAY))
    )
    assert await sweep_once(db, settings) == {}
    assert (await statuses(app, ada))["a"] == ("active", None)

    # An older "active" update arriving late changes nothing.
    old = event("customer.subscription.updated", subscription("sub_1", customer, "active"), t0)
    assert await deliver_ok(stripe_client, old) == "stale"
    assert (await _status(client, ada))["subscription"]["status"] == "past_due"

    # Another "still past due" a day later does not restart the grace period...
    later = event("customer.subscription.updated", due, t_due + DAY)
    assert await deliver_ok(stripe_client, later) == "applied"
    status = await _status(client, ada)
    assert status["subscription"]["grace_until"].startswith(
        time.strftime("%Y-%m-%dT%H:%M", time.gmtime(t_due + 7 * DAY))
    )
    # ...and once it is over (the clock moved on by hand), the sweep suspends.
    await db.execute(
        "UPDATE billing_subscriptions SET past_due_since = past_due_since - interval '6 days'"
        " WHERE id = 'sub_1'"
    )
    changed = await sweep_once(db, settings, app.state.cp.audit)
    assert {str(user_id) for user_id in changed} == {ada["id"]}
    assert await statuses(app, ada) == {
        "a": ("suspending", "billing"),
        "b": ("suspending", "billing"),
        "mine": ("suspended", "user"),
    }
    status = await _status(client, ada)
    assert status["on_hold"] is True and status["tier"]["name"] == "free"
    assert status["hold_reason"] == "your payment is past due and the grace period is over"
    r = await create_tenant(client, ada, "more")
    assert r.status_code == 402 and "grace period is over" in r.json()["error"]["message"]
    ids = {r["subdomain"]: str(r["id"]) for r in await _tenants(db, ada)}
    await set_status(app, ids["a"], "suspended")
    # The owner cannot lift billing's suspension.
    r = await client.post(f"/api/v1/user/tenants/{ids['a']}/resume", headers=ada["headers"])
    assert r.status_code == 409 and "suspended by billing" in r.json()["error"]["message"]
    assert await sweep_once(db, settings) == {}  # nothing left to do

    # Payment: billing resumes what it suspended and is done; the owner's own stays.
    paid = event("invoice.paid", invoice("sub_1", customer), int(time.time()))
    assert await deliver_ok(stripe_client, paid) == "applied"
    assert await statuses(app, ada) == {
        "a": ("resuming", None),
        "b": ("suspending", "billing"),  # still on its way down; the sweep resumes it
        "mine": ("suspended", "user"),
    }
    await set_status(app, ids["b"], "suspended")
    await sweep_once(db, settings)
    assert (await statuses(app, ada))["b"] == ("resuming", None)
    assert (await _status(client, ada))["on_hold"] is False

    # Cancellation suspends at once.
    await set_status(app, ids["a"], "active")
    await set_status(app, ids["b"], "active")
    gone = event(
        "customer.subscription.deleted",
        subscription("sub_1", customer, "canceled"),
        int(time.time()) + 1,
    )
    assert await deliver_ok(stripe_client, gone) == "applied"
    assert await statuses(app, ada) == {
        "a": ("suspending", "billing"),
        "b": ("suspending", "billing"),
        "mine": ("suspended", "user"),
    }
    assert (await _status(client, ada))["hold_reason"] == "your subscription was canceled"
    # A late payment event of the canceled subscription does not bring it back.
    late = event("invoice.paid", invoice("sub_1", customer), int(time.time()))
    assert await deliver_ok(stripe_client, late) == "applied"
    assert (await _status(client, ada))["on_hold"] is True

    await flush_audit(app)
    audit = await db.fetch_all(
        "SELECT actor, action, details FROM audit_log WHERE action LIKE 'billing.%%' ORDER BY id"
    )
    assert ("billing", "billing.hold") in {(a["actor"], a["action"]) for a in audit}
    events = [a for a in audit if a["action"] == "billing.event"]
    assert {a["actor"] for a in events} == {"stripe"}
    assert sorted(events[-2]["details"]["suspended"]) == sorted([ids["a"], ids["b"]])


async def _tenants(db: Any, user: dict[str, Any]) -> list[dict[str, Any]]:
    return await db.fetch_all(  # type: ignore[no-any-return]
        "SELECT id, subdomain FROM tenants WHERE owner_user_id = %(u)s", {"u": user["id"]}
    )


async def test_order_and_duplicates_do_not_change_the_result(
    client: httpx.AsyncClient, stripe_client: httpx.AsyncClient, app: Any, tiers: list
) -> None:
    """The same events, delivered in different orders and some twice, end the same way."""
    t = int(time.time()) - 3 * DAY

    def story(sub: str, cus: str) -> list[dict[str, Any]]:
        return [
            event("customer.subscription.created", subscription(sub, cus, "incomplete"), t),
            event("invoice.paid", invoice(sub, cus), t),  # the same second as the creation
            event("customer.subscription.updated", subscription(sub, cus, "active"), t + 1),
            event("customer.subscription.updated", subscription(sub, cus, "past_due"), t + 60),
            event(
                "customer.subscription.updated",
                subscription(sub, cus, "past_due", "price_pro"),
                t + 90,
            ),
        ]

    rng = random.Random(7)
    finals = []
    orders = [*itertools.islice(itertools.permutations(range(5)), 0, 120, 29), [4, 3, 2, 1, 0]]
    for n, order in enumerate(orders):
        user = await new_user(client, f"order{n}@example.com")
        await checkout(client, user, "basic")
        cus = await customer_of(app, user)
        evts = story(f"sub_o{n}", cus)
        batch = [evts[i] for i in order]
        batch += rng.sample(evts, 2)  # redeliveries
        for evt in batch:
            assert (await deliver(stripe_client, evt)).status_code == 200
        s = await _status(client, user)
        finals.append((s["tier"]["name"], s["subscription"]["status"], s["subscription"]["paid"]))
    assert finals == [("pro", "past_due", True)] * len(orders)

    # Concurrent redelivery of one event: processed once.
    user = await new_user(client, "twice@example.com")
    await checkout(client, user, "basic")
    cus = await customer_of(app, user)
    paid = event("invoice.paid", invoice("sub_twice", cus), t)
    results = await asyncio.gather(*(deliver(stripe_client, paid) for _ in range(4)))
    outcomes = sorted(r.json()["outcome"] for r in results)
    assert outcomes == ["applied", "duplicate", "duplicate", "duplicate"]
    rows = await app.state.cp.db.fetch_all(
        "SELECT outcome FROM stripe_events WHERE id = %(id)s", {"id": paid["id"]}
    )
    assert rows == [{"outcome": "applied"}]


async def test_events_we_cannot_use_are_recorded_and_ignored(
    stripe_client: httpx.AsyncClient, app: Any
) -> None:
    now = int(time.time())
    cases = [
        (event("invoice.paid", invoice("sub_z", "cus_nobody"), now), "ignored: unknown customer"),
        (
            event("customer.subscription.updated", subscription("sub_z", "cus_no", "active"), now),
            "ignored: unknown customer",
        ),
        (
            event("invoice.paid", {"id": "in_1", "object": "invoice", "customer": "c"}, now),
            "ignored: not a subscription invoice",
        ),
        (
            event(
                "checkout.session.completed",
                {"id": "cs_1", "customer": "cus_1", "client_reference_id": "nope"},
                now,
            ),
            "ignored: no user reference",
        ),
        (event("charge.refunded", {"id": "ch_1", "object": "charge"}, now), "ignored"),
    ]
    for evt, outcome in cases:
        assert (await deliver_ok(stripe_client, evt)).startswith(outcome)
    assert len(await _events(app)) == len(cases)
    count = await app.state.cp.db.fetch_val("SELECT count(*) FROM billing_subscriptions")
    assert count == 0


async def test_the_sweep_runs_in_the_background(
    client: httpx.AsyncClient,
    stripe_client: httpx.AsyncClient,
    app: Any,
    cluster: dict,
    tiers: list,
) -> None:
    """A tenant beyond the free tier that becomes active while its owner is on hold gets
    suspended by the sweep (the older one, within the free tier, stays)."""
    state = app.state.cp
    ada = await new_user(client, "ada@example.com")
    await checkout(client, ada)
    customer = await customer_of(app, ada)
    t = int(time.time())
    await deliver_ok(stripe_client, event("invoice.paid", invoice("sub_s", customer), t))
    early = await create_tenant(client, ada, "early")
    await set_status(app, early.json()["id"], "active")
    r = await create_tenant(client, ada, "late")  # still provisioning when the plan ends
    assert r.status_code == 202, r.text
    gone = subscription("sub_s", customer, "canceled")
    await deliver_ok(stripe_client, event("customer.subscription.deleted", gone, t + 1))
    assert (await statuses(app, ada))["late"] == ("provisioning", None)
    await set_status(app, r.json()["id"], "active")  # the provisioner finishes

    fast = state.settings.model_copy(update={"billing_sweep_seconds": 0.05})
    # A worker process: the sweep, no API client.
    assert stripe_gateway(fast, serve_api=False) is None
    sweeper = billing_sweeper(fast, state.db, state.audit, serve_api=False)
    assert sweeper is not None
    sweeper.start()
    try:
        for _ in range(100):
            if (await statuses(app, ada))["late"] != ("active", None):
                break
            await asyncio.sleep(0.05)
    finally:
        await sweeper.stop()
    assert (await statuses(app, ada)) == {
        "early": ("active", None),
        "late": ("suspending", "billing"),
    }
