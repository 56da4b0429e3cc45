"""Headers and markup rules that hold on every dashboard page."""

from __future__ import annotations

import re
import uuid

from tests.admin.conftest import Browser

PAGES = [
    "/admin",
    "/admin/nodes",
    "/admin/nodes/new",
    "/admin/projects",
    "/admin/projects/new",
    "/admin/tenants",
    "/admin/tenants/new",
    "/admin/audit",
    "/admin/settings",
    "/admin/network",
    "/admin/passkeys",
]
_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
_EVENT_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)
_SCRIPT_SRC = re.compile(r'<script[^>]*\bsrc="([^"]+)"', re.IGNORECASE)


def _check_headers(r, path: str) -> None:  # type: ignore[no-untyped-def]
    h = r.headers
    csp = h["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-eval" not in csp, path
    assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";", 1)[0], path
    assert "frame-ancestors 'none'" in csp
    assert h["x-frame-options"] == "DENY"
    assert h["x-content-type-options"] == "nosniff"
    assert h["referrer-policy"] == "no-referrer"
    assert h["cache-control"] == "no-store", path
    assert "HX-Request" in h["vary"], path


def _check_markup(html: str, path: str) -> None:
    assert not _INLINE_SCRIPT.search(html), f"inline script on {path}"
    assert not _EVENT_HANDLER.search(html), f"inline event handler on {path}"
    for src in _SCRIPT_SRC.findall(html):
        assert src.startswith("/admin/static/"), (path, src)
    assert '<meta name="htmx-config"' in html
    config = re.search(r'<meta name="htmx-config" content="([^"]+)"', html)
    assert config and "&#34;allowEval&#34;:false" in config.group(1)
    assert "&#34;includeIndicatorStyles&#34;:false" in config.group(1)


async def test_every_page_has_the_headers_and_no_inline_script(dash: Browser, app: object) -> None:
    db = app.state.cp.db  # type: ignore[attr-defined]
    node_id, project_id, tenant_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await db.execute(
        "INSERT INTO nodes (id, name, api_url, pve_node, token_id, token_secret_sealed,"
        " total_ram_mb, vmid_range_start, vmid_range_end)"
        " VALUES (%(id)s, 'n1', 'https://n1:8006', 'pve1', 'a@pam!t', 'v1:x', 4096, 100, 200)",
        {"id": node_id},
    )
    await db.execute(
        "INSERT INTO projects (id, name, slug, template_vmid, ram_mb, cores, disk_gb, app_port)"
        " VALUES (%(id)s, 'P', 'p', 9000, 512, 1, 8, 8080)",
        {"id": project_id},
    )
    await db.execute(
        "INSERT INTO tenants (id, name, subdomain, project_id, node_id, ram_mb, cores, status)"
        " VALUES (%(id)s, 't', 't1', %(p)s, %(n)s, 512, 1, 'active')",
        {"id": tenant_id, "p": project_id, "n": node_id},
    )
    pages = [
        *PAGES,
        f"/admin/nodes/{node_id}/edit",
        f"/admin/projects/{project_id}/edit",
        f"/admin/tenants/{tenant_id}",
    ]
    for path in pages:
        r = await dash.open(path)
        assert r.status_code == 200, (path, r.text[:300])
        assert r.headers["content-type"].startswith("text/html")
        _check_headers(r, path)
        _check_markup(r.text, path)
        fragment = await dash.hx_get(path)
        assert fragment.status_code == 200, path
        _check_headers(fragment, path)
        assert not _INLINE_SCRIPT.search(fragment.text)


async def test_login_page_and_redirects_carry_the_headers(browser: Browser) -> None:
    r = await browser.open("/admin/login")
    _check_headers(r, "/admin/login")
    _check_markup(r.text, "/admin/login")
    cookie = r.headers["set-cookie"]
    assert (
        cookie.startswith("cp_admin_pre=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    )
    r = await browser.open("/admin/tenants")
    assert r.status_code == 303
    assert r.headers["cache-control"] == "no-store"
    assert "content-security-policy" in r.headers


async def test_static_files_are_ours(browser: Browser) -> None:
    for name, kind in (
        ("htmx.min.js", "javascript"),
        ("admin.js", "javascript"),
        ("admin.css", "css"),
    ):
        r = await browser.http.get(f"/admin/static/{name}")
        assert r.status_code == 200 and kind in r.headers["content-type"], name
        assert r.headers.get("cache-control") != "no-store"
    r = await browser.http.get("/admin/static/htmx.min.js")
    assert r.text.startswith("var htmx=function()")
    assert "eval(" not in (await browser.http.get("/admin/static/admin.js")).text
