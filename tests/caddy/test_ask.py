"""`GET /api/v1/caddy/ask`: 200 only for host names of live tenants (on-demand TLS)."""

from __future__ import annotations

import httpx

from controlplane.caddy.api import subdomain_of
from tests.caddy.helpers import add_tenant

ASK = "/api/v1/caddy/ask"


async def test_ask_answers_for_live_tenants_only(client: httpx.AsyncClient, app: object) -> None:
    db = app.state.cp.db  # type: ignore[attr-defined]
    for sub, status in [
        ("live", "active"),
        ("paused", "suspended"),
        ("pausing", "suspending"),
        ("waking", "resuming"),
        ("coming", "provisioning"),
        ("broken", "error"),
        ("leaving", "deleting"),
        ("gone", "deleted"),
    ]:
        await add_tenant(db, sub, status)
    allowed = {"live", "paused", "pausing", "waking"}
    for sub in [
        "live",
        "paused",
        "pausing",
        "waking",
        "coming",
        "broken",
        "leaving",
        "gone",
        "nobody",
    ]:
        r = await client.get(ASK, params={"domain": f"{sub}.localhost"})  # no token: Caddy calls it
        assert r.status_code == (200 if sub in allowed else 404), (sub, r.text)
    r = await client.get(ASK, params={"domain": "Live.LOCALHOST."})
    assert r.status_code == 200 and r.json() == {"domain": "live.localhost", "allowed": True}


async def test_ask_refuses_names_that_are_not_tenant_hosts(
    client: httpx.AsyncClient, app: object
) -> None:
    db = app.state.cp.db  # type: ignore[attr-defined]
    await add_tenant(db, "live", "active")
    for domain in [
        "localhost",
        "live.localhost.evil.test",
        "x.live.localhost",
        "live.other.test",
        "live",
        ".localhost",
        "live..localhost",
    ]:
        r = await client.get(ASK, params={"domain": domain})
        assert r.status_code == 404, domain
        assert r.json()["error"]["code"] == "not_found"


async def test_ask_validates_its_parameter(client: httpx.AsyncClient) -> None:
    r = await client.get(ASK)
    assert r.status_code == 422
    assert r.json()["error"]["fields"][0]["field"] == "domain"
    r = await client.get(ASK, params={"domain": "a" * 254})
    assert r.status_code == 422
    r = await client.get(ASK, params={"domain": ""})
    assert r.status_code == 422


async def test_ask_is_documented(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    op = spec["paths"][ASK]["get"]
    assert {"200", "404", "422"} <= set(op["responses"])


def test_subdomain_of() -> None:
    assert subdomain_of("acme.example.com", "example.com") == "acme"
    assert subdomain_of("ACME.example.com.", "Example.com") == "acme"
    assert subdomain_of("a.b.example.com", "example.com") is None
    assert subdomain_of("example.com", "example.com") is None
    assert subdomain_of("www.example.com", "example.com") is None  # reserved
