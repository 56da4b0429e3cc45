"""Dashboard fixtures: the app with a setup token, a browser-like client, a passkey."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from controlplane.config import Settings
from tests.admin.authenticator import SoftAuthenticator
from tests.conftest import make_settings

SETUP_TOKEN = "setup-" + "Zq8rT" * 6
ORIGIN = "http://localhost:8080"
_META = re.compile(r'<meta name="csrf-token" content="([^"]*)">')


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, setup_token=SETUP_TOKEN, admin_origin=ORIGIN)


def csrf_of(html: str) -> str:
    match = _META.search(html)
    assert match, "page has no csrf-token meta tag"
    return match.group(1)


@dataclass
class Browser:
    """An httpx client that keeps cookies and the page's CSRF token, like a browser tab."""

    http: httpx.AsyncClient
    csrf: str = ""

    async def open(self, path: str, **kw: Any) -> httpx.Response:
        r = await self.http.get(path, headers={"accept": "text/html"}, **kw)
        if r.status_code == 200 and "text/html" in r.headers.get("content-type", ""):
            self.csrf = csrf_of(r.text)
        return r

    async def post_json(self, path: str, body: dict[str, Any], **kw: Any) -> httpx.Response:
        return await self.http.post(path, json=body, headers={"X-CSRF-Token": self.csrf}, **kw)

    async def post_form(
        self, path: str, data: dict[str, Any] | None = None, htmx: bool = True, **kw: Any
    ) -> httpx.Response:
        headers = {"HX-Request": "true"} if htmx else {}
        return await self.http.post(
            path, data={**(data or {}), "csrf_token": self.csrf}, headers=headers, **kw
        )

    async def hx_get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.http.get(path, headers={"HX-Request": "true"}, **kw)


def new_browser(app: object) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
async def browser(app: object) -> AsyncIterator[Browser]:
    async with new_browser(app) as http:
        yield Browser(http)


@pytest.fixture
def authenticator() -> SoftAuthenticator:
    return SoftAuthenticator(ORIGIN, "localhost")


async def register_first(
    browser: Browser, auth: SoftAuthenticator, *, token: str = SETUP_TOKEN, name: str = "alice"
) -> httpx.Response:
    r = await browser.open("/admin/login")
    assert r.status_code == 200, r.text
    r = await browser.post_json(
        "/admin/setup/options",
        {"setup_token": token, "admin_name": name, "passkey_name": "laptop"},
    )
    if r.status_code != 200:
        return r
    start = r.json()
    return await browser.post_json(
        "/admin/setup/verify",
        {"ticket": start["ticket"], "credential": auth.create(start["options"])},
    )


async def login(browser: Browser, auth: SoftAuthenticator, **kw: Any) -> httpx.Response:
    r = await browser.open("/admin/login")
    assert r.status_code == 200, r.text
    r = await browser.post_json("/admin/login/options", {})
    assert r.status_code == 200, r.text
    start = r.json()
    r = await browser.post_json(
        "/admin/login/verify",
        {"ticket": start["ticket"], "credential": auth.get(start["options"], **kw)},
    )
    if r.status_code == 200:  # like the page does: navigate, picking up the session's token
        assert (await browser.open("/admin")).status_code == 200
    return r


@pytest.fixture
async def dash(browser: Browser, authenticator: SoftAuthenticator) -> Browser:
    """A logged-in dashboard tab (the first admin, set up with the setup token)."""
    r = await register_first(browser, authenticator)
    assert r.status_code == 200, r.text
    r = await browser.open("/admin")
    assert r.status_code == 200, r.text
    return browser


async def audit_rows(
    app: object, sql: str, params: dict[str, Any] | None = None, *, expect: int
) -> list[dict[str, Any]]:
    """Rows of an audit query once `expect` of them are written.

    `flush_audit` writes what is queued, but a batch the background writer already took may
    still be on its way to PostgreSQL; so wait (briefly) for the rows to arrive.
    """
    import asyncio

    from tests.conftest import flush_audit

    db = app.state.cp.db  # type: ignore[attr-defined]
    rows: list[dict[str, Any]] = []
    for _ in range(100):
        await flush_audit(app)
        rows = await db.fetch_all(sql, params)
        if len(rows) >= expect:
            break
        await asyncio.sleep(0.05)
    return rows
