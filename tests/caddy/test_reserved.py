"""The operator's own host names are never a tenant's: not at creation, not in `ask`.

Reserved: the common names (`cp`, `console`, `portal`, `www`, `api`, `admin` ...), any
label starting with `_`, `RESERVED_SUBDOMAINS`, and whatever label under BASE_DOMAIN the
hosts of PUBLIC_URL and ADMIN_ORIGIN use.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from controlplane.config import SettingsError, load_settings
from controlplane.tenants.hostnames import TenantHosts
from tests.caddy.helpers import add_tenant
from tests.conftest import ADMIN_TOKEN, make_settings

ASK = "/api/v1/caddy/ask"
COMMON = ["cp", "console", "portal", "my", "account", "manage", "webmail", "autodiscover",
          "mail", "www", "api", "admin"]  # fmt: skip


@pytest.fixture
async def edge_app(database_url: str) -> AsyncIterator[Any]:
    from controlplane.app import create_app

    settings = make_settings(
        database_url,
        base_domain="tenants.example.test",
        public_url="https://id.tenants.example.test",
        admin_origin="https://ops.tenants.example.test",
        tenant_zone_shared=True,
        reserved_subdomains="billing-eu,Status2",
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


async def test_ask_never_approves_a_reserved_or_operator_host(edge_app: Any) -> None:
    db = edge_app.state.cp.db
    # Rows written behind the API's back (or before these names were reserved).
    for label in [*COMMON, "id", "ops", "billing-eu", "status2", "live"]:
        await add_tenant(db, label, "active")
    transport = httpx.ASGITransport(app=edge_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for label in [*COMMON, "id", "ops", "billing-eu", "status2", "_acme-challenge", "_dmarc"]:
            r = await client.get(ASK, params={"domain": f"{label}.tenants.example.test"})
            assert r.status_code == 404, label
        for host in ["id.tenants.example.test", "ops.tenants.example.test"]:
            assert (await client.get(ASK, params={"domain": host})).status_code == 404
        r = await client.get(ASK, params={"domain": "live.tenants.example.test"})
        assert r.status_code == 200


async def test_reserved_names_cannot_be_created(edge_app: Any) -> None:
    transport = httpx.ASGITransport(app=edge_app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://t",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    ) as admin:
        for label in [*COMMON, "id", "ops", "billing-eu", "status2"]:
            r = await admin.post("/api/v1/tenants", json={"subdomain": label})
            assert r.status_code == 422, (label, r.text)
            fields = r.json()["error"]["fields"]
            assert fields[0]["field"] == "subdomain" and "reserved" in fields[0]["message"]


def test_reserved_names_are_derived_from_the_settings() -> None:
    hosts = TenantHosts(
        base_domain="example.com",
        reserved=frozenset({"extra"}),
        operator_hosts=frozenset({"cp.example.com", "a.ops.example.com", "example.com"}),
    )
    assert hosts.refusal("acme") is None
    for label in ["cp", "ops", "extra", "www", "_x", "console"]:
        assert hosts.refusal(label), label
    assert hosts.subdomain_of("Acme.Example.COM.") == "acme"
    assert hosts.subdomain_of("cp.example.com") is None
    assert hosts.subdomain_of("x.acme.example.com") is None


def test_a_control_plane_host_under_base_domain_is_refused_at_start_up() -> None:
    with pytest.raises(SettingsError, match=r"BASE_DOMAIN.*dedicated"):
        load_settings(
            _env_file=None, base_domain="example.com", public_url="https://cp.example.com"
        )
    with pytest.raises(SettingsError, match=r"BASE_DOMAIN.*dedicated"):
        load_settings(
            _env_file=None, base_domain="example.com", admin_origin="https://admin.example.com"
        )
    # A zone of its own for the tenants is fine, and so is the operator saying it is shared.
    load_settings(
        _env_file=None, base_domain="tenants.example.com", public_url="https://cp.example.com"
    )
    load_settings(
        _env_file=None,
        base_domain="example.com",
        public_url="https://cp.example.com",
        tenant_zone_shared=True,
    )
    # Development on loopback names is not a shared public zone.
    load_settings(_env_file=None, admin_origin="http://admin.localhost:9000")


@pytest.mark.parametrize("value", ["bad label", "-x", "a" * 64])
def test_reserved_subdomains_setting_is_validated(value: str) -> None:
    with pytest.raises(SettingsError, match="RESERVED_SUBDOMAINS"):
        load_settings(_env_file=None, reserved_subdomains=value)
