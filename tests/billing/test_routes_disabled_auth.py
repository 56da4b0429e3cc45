"""With billing off, an anonymous caller still hears 401 first, not 503."""

from __future__ import annotations

import httpx


async def test_anonymous_gets_401_before_billing_is_found_disabled(
    client: httpx.AsyncClient,
) -> None:
    for method, path in (
        ("POST", "/api/v1/billing/checkout"),
        ("POST", "/api/v1/billing/portal"),
        ("GET", "/api/v1/billing/status"),
    ):
        r = await client.request(method, path, json={"tier": "basic"})
        assert r.status_code == 401, (path, r.text)
