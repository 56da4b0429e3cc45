"""Billing fixtures: a local Stripe stand-in, the app pointed at it, users, a cluster.

Webhooks are signed exactly as Stripe signs them (`t=<unix>,v1=<HMAC-SHA256>` over
`{t}.{body}`) with the SDK's own helper, and posted to the app's real webhook route.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import stripe

from controlplane.config import Settings
from controlplane.sysconfig import service as sysconfig
from controlplane.sysconfig.schemas import SystemSettingsUpdate
from tests.auth.conftest import bearer, login, register, user_settings
from tests.billing.fakestripe import FakeStripe, serve
from tests.conftest import SimHandle, seed_cluster

SK = "sk_test_" + "4eC39HqLyjWDarjtT1zdp7dc"
WHSEC = "whsec_" + "Zs9xK2mQv8LpT4rNw6YbE1cJ"
TIERS = [
    {"name": "free", "label": "Free", "max_tenants": 1, "max_ram_mb": 1024},
    {
        "name": "basic",
        "label": "Basic",
        "max_tenants": 3,
        "max_ram_mb": 2048,
        "price_cents": 900,
        "stripe_price_id": "price_basic",
    },
    {
        "name": "pro",
        "label": "Pro",
        "max_tenants": 10,
        "max_ram_mb": 8192,
        "price_cents": 2900,
        "stripe_price_id": "price_pro",
    },
    {"name": "team", "label": "Team (soon)", "max_tenants": 50, "max_ram_mb": 65536},
]
_ids = itertools.count(1)


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripe]:
    fake = FakeStripe(api_key=SK, prices={"price_basic", "price_pro"})
    server = serve(fake)
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def hold_policy() -> str:
    """BILLING_HOLD_POLICY; a test parametrizes it to try the other one."""
    return "excess"


@pytest.fixture
def settings(database_url: str, fake_stripe: FakeStripe, hold_policy: str) -> Settings:
    return user_settings(
        database_url,
        billing_hold_policy=hold_policy,
        stripe_secret_key=SK,
        stripe_webhook_secret=WHSEC,
        stripe_api_base=fake_stripe.url,
        public_url="https://cp.example.test",
        billing_success_url="https://app.example.test/billing/done",
    )


@pytest.fixture
async def tiers(app: Any) -> list[dict[str, Any]]:
    """The operator's tiers, set the way the dashboard's settings page sets them."""
    await sysconfig.update_settings(
        app.state.cp.db, SystemSettingsUpdate.model_validate({"billing_tiers": TIERS})
    )
    return TIERS


@pytest.fixture
async def cluster(admin: httpx.AsyncClient, app: Any, pve_sim: SimHandle) -> dict[str, Any]:
    """An online node with templates 9000/9001; projects `web` (512 MB, default), `big`."""
    return await seed_cluster(
        admin, app, pve_sim, node_ram_mb=65536, web_ram_mb=512, big_ram_mb=1536
    )


async def new_user(client: httpx.AsyncClient, email: str) -> dict[str, Any]:
    """A user registered and logged in through the API: its id and auth headers."""
    await register(client, email)
    headers = bearer((await login(client, email))["access_token"])
    me = (await client.get("/api/v1/auth/me", headers=headers)).json()
    return {"id": me["id"], "email": email, "headers": headers}


async def create_tenant(
    client: httpx.AsyncClient, user: dict[str, Any], subdomain: str, project: str | None = None
) -> httpx.Response:
    body: dict[str, Any] = {"subdomain": subdomain}
    if project:
        body["project"] = project
    return await client.post("/api/v1/user/tenants", json=body, headers=user["headers"])


async def set_status(app: Any, tenant_id: str, status: str) -> None:
    """What the provisioner does when it finishes a step (not under test here)."""
    await app.state.cp.db.execute(
        "UPDATE tenants SET status = %(s)s, step = NULL WHERE id = %(id)s",
        {"id": tenant_id, "s": status},
    )


async def statuses(app: Any, user: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    rows = await app.state.cp.db.fetch_all(
        "SELECT subdomain, status, suspended_by FROM tenants WHERE owner_user_id = %(u)s",
        {"u": user["id"]},
    )
    return {r["subdomain"]: (r["status"], r["suspended_by"]) for r in rows}


async def checkout(
    client: httpx.AsyncClient, user: dict[str, Any], tier: str = "basic"
) -> dict[str, Any]:
    r = await client.post("/api/v1/billing/checkout", json={"tier": tier}, headers=user["headers"])
    assert r.status_code == 200, r.text
    return r.json()


async def customer_of(app: Any, user: dict[str, Any]) -> str:
    value = await app.state.cp.db.fetch_val(
        "SELECT stripe_customer_id FROM billing_accounts WHERE user_id = %(u)s", {"u": user["id"]}
    )
    assert value, "the user has no Stripe customer"
    return str(value)


# --- events, shaped as Stripe sends them ----------------------------------------------------


def event(kind: str, obj: dict[str, Any], created: int, event_id: str | None = None) -> dict:
    return {
        "id": event_id or f"evt_test{next(_ids):06d}",
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": created,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": kind,
        "data": {"object": obj},
    }


def subscription(
    sub_id: str, customer: str, status: str, price: str = "price_basic", period_end: int = 0
) -> dict[str, Any]:
    end = period_end or int(time.time()) + 30 * 86400
    return {
        "id": sub_id,
        "object": "subscription",
        "customer": customer,
        "status": status,
        "items": {
            "object": "list",
            "data": [
                {
                    "id": f"si_{sub_id}",
                    "object": "subscription_item",
                    "price": {"id": price, "object": "price", "recurring": {"interval": "month"}},
                    "current_period_end": end,
                    "quantity": 1,
                }
            ],
        },
    }


def invoice(sub_id: str, customer: str, price: str = "price_basic", *, old_shape: bool = False):
    """A paid subscription invoice; the new API shape unless `old_shape` (before 2025-03)."""
    line: dict[str, Any] = {"id": f"il_{sub_id}", "object": "line_item", "amount": 900}
    inv: dict[str, Any] = {
        "id": f"in_{sub_id}_{next(_ids)}",
        "object": "invoice",
        "customer": customer,
        "status": "paid",
        "billing_reason": "subscription_cycle",
        "lines": {"object": "list", "data": [line]},
    }
    if old_shape:
        inv["subscription"] = sub_id
        line["price"] = {"id": price, "object": "price"}
    else:
        inv["parent"] = {
            "type": "subscription_details",
            "subscription_details": {"subscription": sub_id},
        }
        line["pricing"] = {"type": "price_details", "price_details": {"price": price}}
    return inv


def sign(payload: str, secret: str = WHSEC, timestamp: int | None = None) -> str:
    return stripe.WebhookSignature.generate_signature_header(
        payload, secret, timestamp=timestamp or int(time.time())
    )


async def deliver(
    client: httpx.AsyncClient,
    evt: dict[str, Any],
    *,
    secret: str = WHSEC,
    timestamp: int | None = None,
) -> httpx.Response:
    payload = json.dumps(evt)
    return await client.post(
        "/api/v1/stripe/webhook",
        content=payload,
        headers={
            "Content-Type": "application/json",
            "Stripe-Signature": sign(payload, secret, timestamp),
        },
    )


async def deliver_ok(client: httpx.AsyncClient, evt: dict[str, Any]) -> str:
    r = await deliver(client, evt)
    assert r.status_code == 200, r.text
    return str(r.json()["outcome"])


@pytest.fixture
async def stripe_client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """What Stripe's webhook sender looks like to the app: anonymous, its own address."""
    transport = httpx.ASGITransport(app=app, client=("54.187.174.169", 443))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c
