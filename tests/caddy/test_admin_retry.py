"""A dropped connection to Caddy's admin API: idempotent calls are sent once more, the
others fail with the reason (an insert that may have landed is never sent twice)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from controlplane.caddy.routes import CaddyError, CaddyRoutes, fallback_route


def _routes(handler: httpx.MockTransport) -> CaddyRoutes:
    http = httpx.AsyncClient(transport=handler)
    return CaddyRoutes(http, admin_url="http://caddy-admin", server="srv", base_domain="t.test")


async def test_a_delete_whose_connection_drops_is_sent_again() -> None:
    calls: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if len(calls) == 1:
            raise httpx.ReadError("connection closed before the answer", request=request)
        return httpx.Response(404 if len(calls) > 2 else 200, json={})

    await _routes(httpx.MockTransport(answer)).remove(uuid.uuid4())
    assert calls == ["DELETE", "DELETE", "DELETE"]  # dropped, deleted, then gone (404)


async def test_a_second_drop_is_an_error_naming_the_call() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("connection closed", request=request)

    with pytest.raises(CaddyError, match=r"unreachable \(DELETE /id/tenant-.*ReadError"):
        await _routes(httpx.MockTransport(answer)).remove(uuid.uuid4())


async def test_an_insert_is_not_sent_twice() -> None:
    # PUT on a route index inserts in Caddy: sent again it would leave a duplicate route.
    calls: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if request.method == "PATCH":
            return httpx.Response(404, json={"error": "unknown object ID"})
        if request.method == "GET":
            return httpx.Response(200, json={"routes": [fallback_route()]})
        raise httpx.ReadError("connection closed", request=request)

    routes = _routes(httpx.MockTransport(answer))
    with pytest.raises(CaddyError, match="PUT"):
        await routes.upsert_active(uuid.uuid4(), "app", "10.0.0.5:80")
    assert calls == ["PATCH", "GET", "PUT"]
