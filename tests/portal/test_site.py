"""Serving the customer portal: the SPA fallback, assets, reserved paths, and the CSP that
allows exactly the hashes of the build's inline scripts."""

from __future__ import annotations

import base64
import gzip
import hashlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from controlplane.portal.site import PortalSite, script_hashes
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parents[2]
BOOT = '\n\t\t\t{ __sveltekit_x = { base: "" }; import("/_app/immutable/entry/start.js"); }\n\t\t'
INDEX = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Portal</title>
<script type="module" src="/_app/immutable/entry/start.js"></script></head>
<body><div><script>{BOOT}</script></div></body></html>"""


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@pytest.fixture
def build(tmp_path: Path) -> Path:
    (tmp_path / "_app/immutable/entry").mkdir(parents=True)
    (tmp_path / "index.html").write_text(INDEX)
    (tmp_path / "index.html.gz").write_bytes(gzip.compress(INDEX.encode()))
    js = b"export const start = 1;\n"
    (tmp_path / "_app/immutable/entry/start.js").write_bytes(js)
    (tmp_path / "_app/immutable/entry/start.js.gz").write_bytes(gzip.compress(js))
    (tmp_path / "_app/version.json").write_text('{"version":"1"}')
    (tmp_path / "robots.txt").write_text("User-agent: *\nDisallow: /\n")
    return tmp_path


@pytest.fixture
async def portal(database_url: str, build: Path) -> AsyncIterator[httpx.AsyncClient]:
    from controlplane.app import create_app

    app = create_app(make_settings(database_url, portal_dir=str(build)))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


def _script_src(csp: str) -> list[str]:
    directive = next(d for d in csp.split(";") if d.strip().startswith("script-src"))
    return directive.split()[1:]


def test_hashes_are_those_of_the_inline_scripts_only() -> None:
    assert script_hashes(INDEX) == [_sha256(BOOT)]
    assert script_hashes('<script src="/a.js"></script><p>no script</p>') == []


async def test_pages_get_the_fallback_with_exactly_the_build_hashes(
    portal: httpx.AsyncClient,
) -> None:
    for path in ("/", "/login", "/tenants/3f0c7c1e-0000-4000-8000-000000000000", "/billing"):
        r = await portal.get(path, headers={"Accept-Encoding": "identity"})
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith("text/html")
        assert r.text == INDEX
        assert _script_src(r.headers["content-security-policy"]) == ["'self'", _sha256(BOOT)]
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert r.headers["cache-control"] == "no-cache"


async def test_other_responses_keep_the_csp_without_hashes(portal: httpx.AsyncClient) -> None:
    for r in (await portal.get("/healthz"), await portal.get("/api/v1/nope")):
        assert _script_src(r.headers["content-security-policy"]) == ["'self'"]


async def test_assets_are_served_immutable_and_gzipped_on_request(
    portal: httpx.AsyncClient,
) -> None:
    plain = await portal.get("/_app/immutable/entry/start.js", headers={"Accept-Encoding": "br"})
    assert plain.status_code == 200 and plain.content == b"export const start = 1;\n"
    assert plain.headers["content-type"].startswith("text/javascript")
    assert plain.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "content-encoding" not in plain.headers
    zipped = await portal.get("/_app/immutable/entry/start.js")  # httpx accepts gzip
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.content == plain.content
    assert (await portal.get("/robots.txt")).headers["cache-control"] == "no-cache"
    assert (await portal.head("/")).status_code == 200


async def test_missing_assets_and_reserved_paths_stay_json_404(
    portal: httpx.AsyncClient,
) -> None:
    for path in (
        "/_app/immutable/entry/missing.js",
        "/favicon.ico",
        "/api/v1/no/such/route",
        "/api",
        "/admin/static/missing.js",
        "/.well-known/nothing",
        "/static/missing.js",
    ):
        r = await portal.get(path)
        assert r.status_code == 404, path
        assert r.json()["error"]["code"] == "not_found", path
    # Only GET and HEAD reach the portal; a wrong method on a real route is still a 405.
    assert (await portal.post("/login", json={})).status_code == 404
    assert (await portal.put("/api/v1/auth/login", json={})).status_code == 405
    # A file name cannot climb out of the build folder: only indexed files are served.
    r = await portal.get("/_app/../../../etc/passwd")
    assert r.status_code in (200, 404) and "root:" not in r.text


async def test_the_api_dashboard_and_docs_are_unchanged(portal: httpx.AsyncClient) -> None:
    assert (await portal.get("/api/v1/nodes")).status_code == 401
    assert (await portal.get("/healthz")).status_code == 200
    docs = await portal.get("/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    assert (await portal.get("/openapi.json")).json()["openapi"]


async def test_without_a_build_there_is_no_portal(database_url: str, tmp_path: Path) -> None:
    from controlplane.app import create_app

    with pytest.raises(ValueError, match="npm run build"):
        create_app(make_settings(database_url, portal_dir=str(tmp_path)))


def test_the_real_build_allows_what_sveltekit_hashed() -> None:
    """Our hashes of the built pages equal those SvelteKit wrote into its own meta CSP."""
    build = ROOT / "portal" / "build"
    if not (build / "index.html").is_file():
        pytest.skip("the portal is not built (make portal)")
    site = PortalSite.load(build)
    html = (build / "index.html").read_text()
    meta = re.search(r'http-equiv="content-security-policy" content="([^"]+)"', html)
    assert meta is not None, "SvelteKit's CSP hash mode is off"
    kit_hashes = [s for s in _script_src(meta.group(1)) if s.startswith("'sha256-")]
    assert kit_hashes and set(kit_hashes) == {
        s for s in _script_src(site.csp) if s.startswith("'sha256-")
    }
    assert "unsafe-inline" not in " ".join(_script_src(site.csp))
