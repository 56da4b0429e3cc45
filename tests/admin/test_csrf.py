"""CSRF: every unsafe method under /admin needs the session's token; foreign origins fail."""

from __future__ import annotations

import re
import uuid

import httpx
from fastapi.routing import APIRoute, iter_route_contexts

from controlplane.admin.guard import PUBLIC_POSTS, guard
from tests.admin.authenticator import SoftAuthenticator
from tests.admin.conftest import ORIGIN, SETUP_TOKEN, Browser, new_browser, register_first

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def _route_contexts(app: object) -> list:  # type: ignore[type-arg]
    """Every effective route of the app (FastAPI 0.165 keeps included routers lazy)."""
    return [
        rc
        for rc in iter_route_contexts(app.routes)  # type: ignore[attr-defined]
        if rc.path.startswith("/admin") and isinstance(rc.original_route, APIRoute)
    ]


def _admin_routes(app: object) -> list[tuple[str, str]]:
    return [(m, rc.path) for rc in _route_contexts(app) for m in (rc.methods or set()) & UNSAFE]


def _fill(path: str) -> str:
    return re.sub(r"\{action\}", "suspend", re.sub(r"\{\w+_id\}", str(uuid.uuid4()), path))


async def test_every_unsafe_admin_route_is_guarded(app: object) -> None:
    routes = [rc for rc in _route_contexts(app) if (rc.methods or set()) & UNSAFE]
    assert len(routes) >= 19
    for rc in routes:
        # the effective route carries the router's dependencies, `guard` first
        dependant = rc._route_context.dependant
        assert dependant.dependencies[0].call is guard, rc.path


async def test_unsafe_requests_without_the_token_are_403(dash: Browser, app: object) -> None:
    routes = _admin_routes(app)
    other_csrf = "0" * 43
    for method, path in routes:
        url = _fill(path)
        for headers in ({}, {"X-CSRF-Token": other_csrf}, {"X-CSRF-Token": ""}):
            r = await dash.http.request(method, url, headers=headers, json={})
            assert r.status_code == 403, (method, path, headers, r.status_code, r.text)
            assert "CSRF" in r.json()["error"]["message"]
        r = await dash.http.request(method, url, data={"csrf_token": other_csrf})
        assert r.status_code == 403, (method, path)
    # nothing changed: e.g. the session is still there and not logged out
    assert (await dash.open("/admin")).status_code == 200


async def test_token_of_another_session_is_refused(dash: Browser, app: object) -> None:
    async with new_browser(app) as http:
        other = Browser(http)
        r = await other.open("/admin/login")
        # the other tab's pre-login token is not this session's token
        r = await dash.http.post("/admin/logout", headers={"X-CSRF-Token": other.csrf})
        assert r.status_code == 403
    r = await dash.http.post("/admin/logout", headers={"X-CSRF-Token": dash.csrf})
    assert r.status_code == 303


async def test_form_field_and_header_both_work(dash: Browser) -> None:
    r = await dash.post_form("/admin/settings", {"ram_overcommit": "1.25"}, htmx=False)
    assert r.status_code == 303, r.text
    r = await dash.http.post(
        "/admin/settings", data={"ram_overcommit": "1.5"}, headers={"X-CSRF-Token": dash.csrf}
    )
    assert r.status_code == 303, r.text


async def test_foreign_origin_is_refused_even_with_the_token(dash: Browser) -> None:
    for headers in (
        {"Origin": "https://evil.example"},
        {"Origin": "http://localhost:8081"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},  # a tenant's app on a sibling subdomain
        {"Origin": "null", "Sec-Fetch-Site": "same-site"},
    ):
        r = await dash.http.post("/admin/logout", headers={"X-CSRF-Token": dash.csrf, **headers})
        assert r.status_code == 403, headers
    # our own form: Referrer-Policy no-referrer makes the browser send Origin: null
    r = await dash.http.post(
        "/admin/logout",
        headers={"X-CSRF-Token": dash.csrf, "Origin": "null", "Sec-Fetch-Site": "same-origin"},
    )
    assert r.status_code == 303


async def test_login_endpoints_need_the_pre_login_token(app: object) -> None:
    async with new_browser(app) as http:
        for path in sorted(PUBLIC_POSTS):
            r = await http.post(path, json={})
            assert r.status_code == 403, path
        browser = Browser(http)
        await browser.open("/admin/login")
        r = await http.post(
            "/admin/setup/options",
            json={"setup_token": SETUP_TOKEN, "admin_name": "a", "passkey_name": "k"},
            headers={
                "X-CSRF-Token": browser.csrf[:-1] + ("1" if browser.csrf.endswith("0") else "0")
            },
        )
        assert r.status_code == 403
        r = await register_first(browser, SoftAuthenticator(ORIGIN, "localhost"))
        assert r.status_code == 200


async def test_pre_login_token_is_bound_to_its_cookie(app: object) -> None:
    async with new_browser(app) as h1, new_browser(app) as h2:
        b1, b2 = Browser(h1), Browser(h2)
        await b1.open("/admin/login")
        await b2.open("/admin/login")
        assert b1.csrf != b2.csrf
        r = await h2.post("/admin/login/options", json={}, headers={"X-CSRF-Token": b1.csrf})
        assert r.status_code == 403


async def test_anonymous_unsafe_request_is_401_not_a_change(client: httpx.AsyncClient) -> None:
    r = await client.post(f"/admin/tenants/{uuid.uuid4()}/delete")
    assert r.status_code == 401
    r = await client.post("/admin/nodes", headers={"HX-Request": "true"})
    assert r.status_code == 401 and r.headers["hx-redirect"] == "/admin/login"
