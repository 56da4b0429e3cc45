"""BILLING_HOLD_POLICY=excess (the default): a hold suspends only the tenants beyond the
free tier's limits, newest first, and a payment resumes exactly those."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from controlplane.billing.sweep import sweep_once
from tests.billing.conftest import (
    checkout,
    create_tenant,
    customer_of,
    deliver_ok,
    event,
    invoice,
    new_user,
    set_status,
    statuses,
    subscription,
)

# The suite's tiers: free allows 1 tenant and 1024 MB; `web` tenants have 512 MB, `big` 1536.


async def _paid_user(
    client: httpx.AsyncClient, stripe_client: httpx.AsyncClient, app: Any, email: str
) -> tuple[dict[str, Any], str]:
    user = await new_user(client, email)
    await checkout(client, user, "pro")
    customer = await customer_of(app, user)
    t0 = int(time.time()) - 100
    sub = subscription("sub_" + email[:3], customer, "active", price="price_pro")
    await deliver_ok(stripe_client, event("customer.subscription.created", sub, t0))
    paid = invoice(sub["id"], customer, price="price_pro")
    assert await deliver_ok(stripe_client, event("invoice.paid", paid, t0 + 1)) == "applied"
    return user, customer


async def _active(
    client: httpx.AsyncClient, app: Any, user: dict[str, Any], names: list[str]
) -> None:
    for name in names:
        r = await create_tenant(client, user, name)
        assert r.status_code == 202, r.text
        await set_status(app, r.json()["id"], "active")


async def test_cancel_suspends_only_the_excess_newest_first_and_payment_resumes_them(
    client: httpx.AsyncClient,
    stripe_client: httpx.AsyncClient,
    app: Any,
    cluster: dict,
    tiers: list,
) -> None:
    ada, customer = await _paid_user(client, stripe_client, app, "ada@example.com")
    await _active(client, app, ada, ["first", "second", "third"])
    gone = subscription("sub_ada", customer, "canceled", price="price_pro")
    assert await deliver_ok(stripe_client, event("customer.subscription.deleted", gone,
                                                 int(time.time()))) == "applied"  # fmt: skip
    # Free allows one: the oldest stays, the two newer are suspended by billing.
    assert await statuses(app, ada) == {
        "first": ("active", None),
        "second": ("suspending", "billing"),
        "third": ("suspending", "billing"),
    }
    for name, tid in await _ids(app, ada):
        if name != "first":
            await set_status(app, tid, "suspended")
    # Nothing more to do for the sweep: the kept tenant is within the limits.
    db, settings = app.state.cp.db, app.state.cp.settings
    assert await sweep_once(db, settings) == {}
    # The user suspends the kept one themself; a payment later resumes exactly billing's.
    (first,) = [tid for name, tid in await _ids(app, ada) if name == "first"]
    r = await client.post(f"/api/v1/user/tenants/{first}/suspend", headers=ada["headers"])
    assert r.status_code == 202
    await set_status(app, first, "suspended")
    sub = subscription("sub_ada2", customer, "active", price="price_pro")
    await deliver_ok(stripe_client, event("customer.subscription.created", sub, int(time.time())))
    paid = event("invoice.paid", invoice("sub_ada2", customer, price="price_pro"),
                 int(time.time()) + 1)  # fmt: skip
    assert await deliver_ok(stripe_client, paid) == "applied"
    assert await statuses(app, ada) == {
        "first": ("suspended", "user"),
        "second": ("resuming", None),
        "third": ("resuming", None),
    }


async def test_ram_beyond_the_free_tier_counts_too(
    client: httpx.AsyncClient,
    stripe_client: httpx.AsyncClient,
    app: Any,
    cluster: dict,
    tiers: list,
) -> None:
    """The oldest tenant alone is bigger than the free tier's RAM: it goes too (the kept
    tenants are the oldest that fit, in order), and a deleted tenant frees the room."""
    bob, customer = await _paid_user(client, stripe_client, app, "bob@example.com")
    await _active(client, app, bob, ["huge", "small"])
    await app.state.cp.db.execute(  # grown by the admin since (PUT /tenants/{id} does this)
        "UPDATE tenants SET ram_mb = 1536 WHERE subdomain = 'huge'"
    )
    gone = subscription("sub_bob", customer, "canceled", price="price_pro")
    await deliver_ok(stripe_client, event("customer.subscription.deleted", gone, int(time.time())))
    assert await statuses(app, bob) == {
        "huge": ("suspending", "billing"),
        "small": ("suspending", "billing"),
    }
    ids = dict(await _ids(app, bob))
    for tid in ids.values():
        await set_status(app, tid, "suspended")
    # The big one is deleted: the small one fits the free tier and the sweep resumes it.
    await app.state.cp.db.execute(
        "UPDATE tenants SET status = 'deleted', deleted_at = now(), ram_reserved = false"
        " WHERE id = %(id)s",
        {"id": ids["huge"]},
    )
    changed = await sweep_once(app.state.cp.db, app.state.cp.settings)
    assert [str(u) for u in changed] == [bob["id"]]
    assert (await statuses(app, bob))["small"] == ("resuming", None)


@pytest.mark.parametrize("hold_policy", ["all"])
async def test_policy_all_suspends_every_tenant(
    client: httpx.AsyncClient,
    stripe_client: httpx.AsyncClient,
    app: Any,
    cluster: dict,
    tiers: list,
) -> None:
    cy, customer = await _paid_user(client, stripe_client, app, "cy@example.com")
    await _active(client, app, cy, ["one", "two"])
    gone = subscription("sub_cy@", customer, "canceled", price="price_pro")
    await deliver_ok(stripe_client, event("customer.subscription.deleted", gone, int(time.time())))
    assert await statuses(app, cy) == {
        "one": ("suspending", "billing"),
        "two": ("suspending", "billing"),
    }


async def _ids(app: Any, user: dict[str, Any]) -> list[tuple[str, str]]:
    rows = await app.state.cp.db.fetch_all(
        "SELECT subdomain, id FROM tenants WHERE owner_user_id = %(u)s ORDER BY created_at",
        {"u": user["id"]},
    )
    return [(r["subdomain"], str(r["id"])) for r in rows]
