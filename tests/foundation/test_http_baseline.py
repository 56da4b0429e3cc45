"""The HTTP baseline that holds on every response: headers, errors, body limit, request ids."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN, make_settings, terminate_backends

REQUIRED = {
    "content-security-policy",
    "x-content-type-options",
    "referrer-policy",
    "x-request-id",
}


def _check_headers(r: httpx.Response) -> None:
    missing = REQUIRED - set(r.headers)
    assert not missing, (r.request.url, r.status_code, missing)
    # HSTS over HTTPS only: sent over plain HTTP it would be ignored at best, and pin a
    # host that has no HTTPS at worst.
    hsts = r.headers.get("strict-transport-security")
    if r.request.url.scheme == "https":
        assert hsts == "max-age=63072000; includeSubDomains", (r.request.url, hsts)
    else:
        assert hsts is None, (r.request.url, hsts)
    csp = r.headers["content-security-policy"]
    script_src = next(d for d in csp.split(";") if d.strip().startswith("script-src"))
    assert "unsafe-inline" not in script_src and "unsafe-eval" not in script_src
    assert "frame-ancestors 'none'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"


async def test_headers_on_every_kind_of_response(
    client: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    responses = [
        await client.get("/healthz"),
        await client.get("/openapi.json"),
        await client.get("/docs"),
        await client.get("/docs-assets/swagger-ui.css"),
        await client.get("/static/docs-init.js"),
        await client.get("/api/v1/nodes"),  # 401
        await client.get("/api/v1/no/such/path"),  # 404
        await client.delete("/healthz"),  # 405
        await admin.post("/api/v1/nodes", json={}),  # 422
        await admin.post("/api/v1/projects", content=b"x" * 2_000_000),  # 413
    ]
    assert [r.status_code for r in responses] == [200, 200, 200, 200, 200, 401, 404, 405, 422, 413]
    for r in responses:
        _check_headers(r)
    for r in responses[5:]:
        body = r.json()
        assert set(body) == {"error", "request_id"}
        assert body["error"]["status"] == r.status_code and body["error"]["message"]


async def test_hsts_only_over_https(app: object, database_url: str) -> None:
    async def fetch(app: object, url: str, **headers: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("10.9.0.1", 40000))  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport) as c:
            return await c.get(url, headers=headers)

    https = await fetch(app, "https://testserver/healthz")
    _check_headers(https)
    assert "strict-transport-security" in https.headers
    _check_headers(await fetch(app, "http://testserver/healthz"))
    # X-Forwarded-Proto counts only from a trusted proxy.
    forged = await fetch(app, "http://testserver/healthz", **{"X-Forwarded-Proto": "https"})
    assert "strict-transport-security" not in forged.headers

    from controlplane.app import create_app

    proxied = create_app(make_settings(database_url, trusted_proxies="10.9.0.0/16"))
    async with proxied.router.lifespan_context(proxied):
        r = await fetch(proxied, "http://testserver/healthz", **{"X-Forwarded-Proto": "https"})
        assert r.headers["strict-transport-security"] == "max-age=63072000; includeSubDomains"
        r = await fetch(proxied, "http://testserver/healthz", **{"X-Forwarded-Proto": "http"})
        assert "strict-transport-security" not in r.headers


async def test_trailing_slash_redirect_does_not_reflect_the_host(
    client: httpx.AsyncClient,
) -> None:
    # Starlette's redirect to the path without the slash was built from the Host header: a
    # forged Host (cache poisoning, password-reset style links) became the Location.
    r = await client.get("/api/v1/nodes/?limit=5", headers={"Host": "evil.example"})
    assert r.status_code in (307, 308), r.text
    assert r.headers["location"] == "/api/v1/nodes?limit=5"
    r = await client.get("/api/v1/nodes/")
    assert r.headers["location"] == "/api/v1/nodes"


async def test_unexpected_error_is_a_500_in_the_common_shape(
    app: object, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    async def boom() -> None:
        raise RuntimeError("kaboom")

    app.add_api_route("/boom", boom)  # type: ignore[attr-defined]
    with caplog.at_level(logging.ERROR):
        r = await client.get("/boom", headers={"X-Request-ID": "req-500"})
    assert r.status_code == 500
    _check_headers(r)
    assert r.json()["error"]["code"] == "internal_error" and "kaboom" not in r.text
    assert r.json()["request_id"] == "req-500"
    assert any("kaboom" in (rec.exc_text or "") or rec.exc_info for rec in caplog.records)


async def test_body_limit_with_and_without_content_length(admin: httpx.AsyncClient) -> None:
    big = b"{" + b" " * 2_000_000 + b"}"
    r = await admin.post(
        "/api/v1/projects", content=big, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413

    async def chunks():  # no Content-Length: chunked transfer
        for _ in range(40):
            yield b" " * 50_000

    r = await admin.post(
        "/api/v1/projects", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in r.request.headers
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"
    # A body under the limit still reaches validation.
    r = await admin.post(
        "/api/v1/projects", content=b"{}", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422


async def test_request_id_is_passed_through_or_made(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert (
        r.headers["x-request-id"] != "bad id\twith spaces" and len(r.headers["x-request-id"]) == 32
    )


async def test_log_lines_are_json_with_the_request_id(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    from controlplane.web.logs import JsonFormatter

    with caplog.at_level(logging.INFO, logger="controlplane.http"):
        await client.get("/healthz", headers={"X-Request-ID": "log-me-1"})
    lines = [
        json.loads(JsonFormatter().format(rec))
        for rec in caplog.records
        if rec.name == "controlplane.http"
    ]
    assert lines and lines[-1]["path"] == "/healthz" and lines[-1]["status"] == 200
    assert lines[-1]["request_id"] == "log-me-1"


async def test_cors_allows_only_configured_origins(client: httpx.AsyncClient) -> None:
    ok = await client.options(
        "/api/v1/nodes",
        headers={"Origin": "http://localhost:5173", "Access-Control-Request-Method": "GET"},
    )
    assert ok.headers.get("access-control-allow-origin") == "http://localhost:5173"
    bad = await client.options(
        "/api/v1/nodes",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in bad.headers


async def test_health_reports_database_trouble(
    app: object, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    db = app.state.cp.db  # type: ignore[attr-defined]

    async def broken() -> None:
        raise OSError("connection refused")

    db.ping = broken
    with caplog.at_level(logging.WARNING):
        r = await client.get("/healthz")
    # Anyone may call /healthz: the driver's text (hosts, users, paths) goes to the log only.
    assert r.status_code == 503 and r.json() == {
        "status": "unavailable",
        "reason": "database: unavailable",
    }
    logged = [rec for rec in caplog.records if rec.getMessage() == "health check failed"]
    assert logged and "connection refused" in logged[0].error  # type: ignore[attr-defined]


async def test_admin_token_compared_exactly(client: httpx.AsyncClient) -> None:
    for header in (
        f"Bearer {ADMIN_TOKEN[:-1]}",
        f"Bearer {ADMIN_TOKEN}x",
        f"Basic {ADMIN_TOKEN}",
        ADMIN_TOKEN,
    ):
        assert (
            await client.get("/api/v1/audit", headers={"Authorization": header})
        ).status_code == 401
    assert (
        await client.get("/api/v1/audit", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    ).status_code == 200


async def test_a_lost_database_connection_is_a_503_then_recovers(
    admin: httpx.AsyncClient, database_url: str
) -> None:
    """PostgreSQL restarting under the pool: 503 with Retry-After, never a 500, then 200."""

    assert (await admin.get("/api/v1/nodes")).status_code == 200
    assert terminate_backends(database_url) >= 1
    statuses = []
    for _ in range(20):  # each dead pooled connection fails once and is replaced
        r = await admin.get("/api/v1/nodes")
        statuses.append(r.status_code)
        if r.status_code == 200:
            break
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "database_unavailable"
        assert r.headers["retry-after"] == "5"
    assert statuses[-1] == 200 and 503 in statuses, statuses


async def test_no_free_connection_is_a_503_after_the_pool_timeout(database_url: str) -> None:
    """A database that is down (or a pool that is exhausted) answers in DB_POOL_TIMEOUT_S,
    not after psycopg's default 30 s."""
    import time

    from controlplane.app import create_app
    from tests.conftest import make_settings

    settings = make_settings(database_url, db_pool_min=1, db_pool_max=1, db_pool_timeout_s=0.5)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://testserver",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ) as admin:
            db = app.state.cp.db
            async with db.pool.connection():  # the only connection, held
                started = time.monotonic()
                r = await admin.get("/api/v1/nodes")
                waited = time.monotonic() - started
            assert r.status_code == 503 and r.json()["error"]["code"] == "database_unavailable"
            assert waited < 5, waited  # the configured 0.5 s, far from the default 30 s
            assert (await admin.get("/api/v1/nodes")).status_code == 200


async def test_openapi_documents_the_database_outage_503(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            assert "503" in operation["responses"], (method, path)
