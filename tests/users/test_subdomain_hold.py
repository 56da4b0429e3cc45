"""A deleted tenant's subdomain is held for its owner for SUBDOMAIN_HOLD_DAYS: another user
gets a 409 that says so, while the owner (and the operator, through the admin API) may
take it again at once. After the hold anyone may."""

from __future__ import annotations

import httpx
import pytest

from controlplane.app import create_app
from tests.auth.conftest import bearer, login, register, user_settings
from tests.conftest import ADMIN_TOKEN, SimHandle

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
async def app(database_url: str, pve_sim: SimHandle):  # type: ignore[no-untyped-def]
    application = create_app(user_settings(database_url, subdomain_hold_days=7))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            r = await c.post("/api/v1/nodes", json=pve_sim.node_body("pve1"), headers=ADMIN)
            assert r.status_code == 201, r.text
            await application.state.cp.db.execute(
                "UPDATE nodes SET status = 'online', templates = '{9000}'"
            )
            body = {"name": "Web", "slug": "web", "template_vmid": 9000, "ram_mb": 256}
            body["self_service"] = True
            r = await c.post("/api/v1/projects", json={**body, "is_default": True}, headers=ADMIN)
            assert r.status_code == 201, r.text
        yield application


async def _user(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    await register(client, email)
    return bearer((await login(client, email))["access_token"])


async def _create(client: httpx.AsyncClient, who: dict[str, str], subdomain: str) -> httpx.Response:
    return await client.post("/api/v1/user/tenants", json={"subdomain": subdomain}, headers=who)


async def _deleted(app: object, tenant_id: str, *, days_ago: float = 0) -> None:
    """Where the provisioner leaves a deleted tenant (not under test here)."""
    await app.state.cp.db.execute(  # type: ignore[attr-defined]
        "UPDATE tenants SET status = 'deleted', step = NULL,"
        " deleted_at = now() - make_interval(days => %(days)s) WHERE id = %(id)s",
        {"id": tenant_id, "days": days_ago},
    )


async def test_a_deleted_subdomain_is_held_for_its_owner(app: object) -> None:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        ada, bob = await _user(c, "ada@example.com"), await _user(c, "bob@example.com")
        r = await _create(c, ada, "acme")
        assert r.status_code == 202, r.text
        await _deleted(app, r.json()["id"])

        r = await _create(c, bob, "acme")
        assert r.status_code == 409, r.text
        error = r.json()["error"]
        assert error["fields"][0]["field"] == "subdomain"
        assert "held for the owner of the deleted tenant until" in error["message"]

        r = await _create(c, ada, "acme")  # the owner takes it back
        assert r.status_code == 202, r.text
        await _deleted(app, r.json()["id"])
        r = await c.post("/api/v1/tenants", json={"subdomain": "acme"}, headers=ADMIN)
        assert r.status_code == 202, r.text  # so may the operator
        await _deleted(app, r.json()["id"])

        r = await _create(c, ada, "old")
        await _deleted(app, r.json()["id"], days_ago=8)  # the hold is over
        assert (await _create(c, bob, "old")).status_code == 202
