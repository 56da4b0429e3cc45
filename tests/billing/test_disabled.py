"""Without Stripe keys: billing routes answer 503, tier limits still apply (free tier)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from controlplane.config import Settings, SettingsError, load_settings
from tests.auth.conftest import user_settings
from tests.billing.conftest import SK, WHSEC, create_tenant, new_user


@pytest.fixture
def settings(database_url: str) -> Settings:
    return user_settings(database_url, billing_free_max_tenants=2, billing_free_max_ram_mb=1024)


async def test_billing_routes_say_billing_is_not_enabled(
    client: httpx.AsyncClient, app: Any, cluster: dict
) -> None:
    ada = await new_user(client, "ada@example.com")
    for method, path, body in [
        ("POST", "/api/v1/billing/checkout", {"tier": "basic"}),
        ("POST", "/api/v1/billing/portal", None),
        ("GET", "/api/v1/billing/status", None),
        ("POST", "/api/v1/stripe/webhook", {"id": "evt_1"}),
    ]:
        r = await client.request(method, path, json=body, headers=ada["headers"])
        assert r.status_code == 503, (path, r.text)
        assert r.json()["error"]["message"].startswith("billing is not enabled"), r.text
    # No tiers in the system settings: the free tier comes from the environment.
    assert (await create_tenant(client, ada, "one")).status_code == 202
    assert (await create_tenant(client, ada, "two", project="big")).status_code == 402
    assert (await create_tenant(client, ada, "two")).status_code == 202
    r = await create_tenant(client, ada, "three")
    assert r.status_code == 402
    assert r.json()["error"]["message"] == "the free tier allows 2 tenants; you have 2"
    assert app.state.cp.stripe_gateway is None


async def test_openapi_documents_billing(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    expected = {
        ("/api/v1/billing/checkout", "post"): {"401", "409", "422", "502", "503"},
        ("/api/v1/billing/portal", "post"): {"401", "409", "502", "503"},
        ("/api/v1/billing/status", "get"): {"401", "503"},
        ("/api/v1/stripe/webhook", "post"): {"400", "503"},
        ("/api/v1/user/tenants", "post"): {"402"},
    }
    for (path, method), statuses in expected.items():
        documented = set(paths[path][method]["responses"])
        assert statuses <= documented, (path, documented)
    webhook = paths["/api/v1/stripe/webhook"]["post"]
    assert webhook["parameters"][0]["name"] == "stripe-signature"


def test_stripe_settings_are_checked() -> None:
    ok = load_settings(_env_file=None, stripe_secret_key=SK, stripe_webhook_secret=WHSEC)
    assert ok.billing_enabled and ok.stripe_api_base == "https://api.stripe.com"
    assert not load_settings(
        _env_file=None, stripe_secret_key="", stripe_webhook_secret=""
    ).billing_enabled
    cases: list[tuple[dict[str, Any], str]] = [
        ({"stripe_secret_key": SK}, "set both"),
        ({"stripe_webhook_secret": WHSEC}, "set both"),
        ({"stripe_secret_key": "pk_live_x", "stripe_webhook_secret": WHSEC}, "sk_"),
        ({"stripe_secret_key": SK, "stripe_webhook_secret": "secret"}, "whsec_"),
        ({"stripe_api_base": "ftp://stripe"}, "STRIPE_API_BASE"),
        ({"billing_success_url": "/relative"}, "BILLING_SUCCESS_URL"),
        ({"billing_grace_days": -1}, "BILLING_GRACE_DAYS"),
    ]
    for values, message in cases:
        with pytest.raises(SettingsError, match=message):
            load_settings(_env_file=None, **values)
    assert SK not in repr(ok) and WHSEC not in repr(ok)
