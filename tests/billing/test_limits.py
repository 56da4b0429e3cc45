"""Tier limits where users create tenants: 402 naming the limit, race-free."""

from __future__ import annotations

import asyncio
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
    set_status,
    subscription,
)


async def test_free_tier_counts_tenants_and_ram(
    client: httpx.AsyncClient, app: Any, cluster: dict, tiers: list
) -> None:
    ada = await new_user(client, "ada@example.com")
    r = await create_tenant(client, ada, "too-big", project="big")  # 1536 MB > 1024 MB
    assert r.status_code == 402, r.text
    err = r.json()["error"]
    assert err["code"] == "payment_required"
    assert err["message"] == (
        "the free tier allows 1024 MB of RAM in total; your tenants use 0 MB and this one "
        "needs 1536 MB"
    )
    r = await create_tenant(client, ada, "first")
    assert r.status_code == 202, r.text
    r = await create_tenant(client, ada, "second")
    assert r.status_code == 402
    assert r.json()["error"]["message"] == "the free tier allows 1 tenant; you have 1"
    # A tenant being deleted no longer counts.
    first = (await client.get("/api/v1/user/tenants", headers=ada["headers"])).json()["items"][0]
    await set_status(app, first["id"], "active")
    r = await client.delete(f"/api/v1/user/tenants/{first['id']}", headers=ada["headers"])
    assert r.status_code == 202
    r = await create_tenant(client, ada, "second")
    assert r.status_code == 202, r.text
    # Limits are per user.
    bob = await new_user(client, "bob@example.com")
    assert (await create_tenant(client, bob, "bobs")).status_code == 202


async def test_concurrent_creates_cannot_both_pass(
    client: httpx.AsyncClient, app: Any, cluster: dict, tiers: list
) -> None:
    db = app.state.cp.db
    for round_ in range(4):
        user = await new_user(client, f"racer{round_}@example.com")
        results = await asyncio.gather(
            *(create_tenant(client, user, f"race{round_}-{i}") for i in range(3))
        )
        codes = sorted(r.status_code for r in results)
        assert codes == [202, 402, 402], [r.text for r in results]
        count = await db.fetch_val(
            "SELECT count(*) FROM tenants WHERE owner_user_id = %(u)s", {"u": user["id"]}
        )
        assert count == 1


async def test_a_paid_tier_raises_the_limits(
    client: httpx.AsyncClient, stripe_client: httpx.AsyncClient, app: Any, cluster: dict, tiers
) -> None:
    ada = await new_user(client, "ada@example.com")
    assert (await create_tenant(client, ada, "one")).status_code == 202
    await checkout(client, ada, "basic")
    customer = await customer_of(app, ada)
    now = int(time.time())
    # A subscription that exists but is not paid grants nothing.
    sub = subscription("sub_ada", customer, "incomplete")
    assert await deliver_ok(stripe_client, event("customer.subscription.created", sub, now)) == (
        "applied"
    )
    assert (await create_tenant(client, ada, "two")).status_code == 402
    paid = event("invoice.paid", invoice("sub_ada", customer), now + 1)
    assert await deliver_ok(stripe_client, paid) == "applied"
    assert (await create_tenant(client, ada, "two")).status_code == 202
    r = await create_tenant(client, ada, "three", project="big")  # 512 + 512 + 1536 > 2048
    assert r.status_code == 402
    assert "the basic tier allows 2048 MB of RAM in total" in r.json()["error"]["message"]
    assert (await create_tenant(client, ada, "three")).status_code == 202
    r = await create_tenant(client, ada, "four")
    assert r.json()["error"]["message"] == "the basic tier allows 3 tenants; you have 3"
