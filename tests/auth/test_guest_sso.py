"""The simulated containers' app logs a user in from an SSO token, verified against the
control plane's JWKS over HTTP, as a tenant's real app would (the demo's "Open app")."""

from __future__ import annotations

from typing import Any

import httpx

from controlplane.pvesim.guestapps import SsoCheck, guest_app
from controlplane.pvesim.models import Container
from tests.auth.conftest import bearer
from tests.auth.test_sso import make_tenant
from tests.events.conftest import http_server


async def _get(app: Any, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://acme.localhost") as c:
        return await c.get(path)


async def test_the_guest_app_shows_the_user_of_a_valid_token(
    client: httpx.AsyncClient, user: dict, app: Any
) -> None:
    tenant_id = await make_tenant(app, user["id"], "acme")
    r = await client.post(
        f"/api/v1/user/tenants/{tenant_id}/sso-token",
        headers=bearer(user["tokens"]["access_token"]),
    )
    token = r.json()["token"]
    async with http_server(app) as base:
        check = SsoCheck(f"{base}/.well-known/jwks.json", "http://localhost:8080", "localhost")
        acme = guest_app(Container(vmid=10000, node="pve1", config={"hostname": "acme"}), check)
        r = await _get(acme, f"/sso?token={token}")
        assert r.status_code == 200, r.text
        assert "Logged in as <b>ada@example.com</b>" in r.text
        # Another tenant's app refuses it (audience), and so does anything not signed by us.
        other = guest_app(Container(vmid=10001, node="pve1", config={"hostname": "other"}), check)
        assert (await _get(other, f"/sso?token={token}")).status_code == 401
        forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        assert (await _get(acme, f"/sso?token={forged}")).status_code == 401
        assert (await _get(acme, "/sso")).status_code == 401
    # Without an SSO check the app is the plain identity app.
    r = await _get(
        guest_app(Container(vmid=10000, node="pve1", config={"hostname": "acme"})), "/sso"
    )
    assert r.json()["hostname"] == "acme"
