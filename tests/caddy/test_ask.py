"""`GET /api/v1/caddy/ask`: 200 only for host names of live tenants (on-demand TLS)."""

from __future__ import annotations

import httpx
import pytest

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


async def test_ask_answers_are_cached_briefly_and_the_cache_is_bounded(
    client: httpx.AsyncClient, app: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from controlplane.caddy import api

    db = app.state.cp.db  # type: ignore[attr-defined]
    await add_tenant(db, "cached", "active")
    lookups: list[str] = []
    real = api.is_live_host

    async def counting(db: object, domain: str, hosts: object) -> bool:
        lookups.append(domain)
        return await real(db, domain, hosts)  # type: ignore[arg-type]

    monkeypatch.setattr(api, "is_live_host", counting)
    for _ in range(5):
        assert (await client.get(ASK, params={"domain": "cached.localhost"})).status_code == 200
        assert (await client.get(ASK, params={"domain": "Nobody.localhost."})).status_code == 404
    assert lookups == ["cached.localhost", "nobody.localhost"]  # then the cache answers
    cache = api.cache_of(app)
    assert cache.max_entries == api.ASK_CACHE_ENTRIES
    cache.max_entries = 40  # the bound, small enough to reach here
    for i in range(cache.max_entries + 50):
        await client.get(ASK, params={"domain": f"n{i}.localhost"})
    assert len(cache) == cache.max_entries


def test_ask_cache_expires() -> None:
    from controlplane.caddy.api import AnswerCache

    now = [100.0]
    cache = AnswerCache(max_entries=2, ttl=5.0, clock=lambda: now[0])
    cache.put("a", True)
    assert cache.get("a") is True
    now[0] += 5.1
    assert cache.get("a") is None
    cache.put("a", True)
    cache.put("b", False)
    cache.put("c", True)  # evicts the oldest
    assert cache.get("a") is None and cache.get("b") is False and len(cache) == 2
