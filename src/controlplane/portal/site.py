"""Serving the built customer portal at `/` under the strict CSP.

The portal is a static single-page app (SvelteKit with adapter-static, built by
`npm run build` into `portal/build`). At start-up `PortalSite.load` indexes every file of
the build once, so a request can only ever name a file that was there (no path is joined
from the URL), and reads the inline bootstrap scripts of its HTML pages: the CSP header
allows exactly their SHA-256 hashes and no other inline script.

Precedence: every route and mount of the app comes first. The portal answers only what
nothing else matched (Starlette's router default), and only GET/HEAD outside the reserved
prefixes: an unknown `/api/...` path, or a POST to an unknown path, keeps the API's JSON 404.
Unknown page paths get the SPA fallback page, which renders the right page in the browser.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.responses import FileResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from controlplane.web.middleware import content_security_policy

log = logging.getLogger(__name__)

FALLBACK = "index.html"
# Paths the portal never answers, even when nothing else matched them.
RESERVED_PREFIXES = (
    "/api",
    "/admin",
    "/docs",
    "/docs-assets",
    "/static",
    "/metrics",
    "/healthz",
    "/.well-known",
    "/openapi.json",
)
_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.DOTALL | re.I)
_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
    ".woff2": "font/woff2",
}


def script_hashes(html: str) -> list[str]:
    """CSP sources (`'sha256-...'`) of the inline scripts of one HTML page."""
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in _INLINE_SCRIPT.findall(html)
    ]


def _reserved(path: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in RESERVED_PREFIXES)


@dataclass(frozen=True)
class PortalSite:
    root: Path
    files: dict[str, Path]  # "/_app/immutable/x.js" -> its file (without .gz/.br twins)
    csp: str

    @classmethod
    def load(cls, root: Path) -> PortalSite:
        """Index a build folder; ValueError when it holds no fallback page."""
        root = root.resolve()
        fallback = root / FALLBACK
        if not fallback.is_file():
            raise ValueError(f"{root} has no {FALLBACK}: build the portal (npm run build)")
        files: dict[str, Path] = {}
        hashes: list[str] = []
        for file in sorted(root.rglob("*")):
            if not file.is_file() or file.suffix in (".gz", ".br"):
                continue
            files["/" + file.relative_to(root).as_posix()] = file
            if file.suffix == ".html":
                hashes.extend(h for h in script_hashes(file.read_text()) if h not in hashes)
        return cls(root=root, files=files, csp=content_security_policy(*hashes))

    def response_for(self, path: str, accept_encoding: str) -> Response | None:
        """The answer for a GET of `path`, or None when the portal does not answer it."""
        if _reserved(path):
            return None
        file = self.files.get(path)
        if file is None:
            if path.startswith("/_app/") or "." in path.rsplit("/", 1)[-1]:
                return None  # a missing asset is a 404, never the HTML page
            file = self.files["/" + FALLBACK]
        return self._file(file, accept_encoding)

    def _file(self, file: Path, accept_encoding: str) -> Response:
        headers = {"vary": "Accept-Encoding"}
        immutable = "/_app/immutable/" in file.as_posix()
        headers["cache-control"] = (
            "public, max-age=31536000, immutable" if immutable else "no-cache"
        )
        if file.suffix == ".html":
            headers["content-security-policy"] = self.csp
        media_type = _MEDIA_TYPES.get(file.suffix, "application/octet-stream")
        gz = file.with_name(file.name + ".gz")
        if "gzip" in accept_encoding.lower() and gz.is_file():
            headers["content-encoding"] = "gzip"
            return FileResponse(gz, media_type=media_type, headers=headers)
        return FileResponse(file, media_type=media_type, headers=headers)


class PortalFallback:
    """The router's default: the portal for unmatched GET/HEAD page paths, else `not_found`."""

    def __init__(self, site: PortalSite, not_found: ASGIApp) -> None:
        self.site = site
        self.not_found = not_found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            accept = dict(scope["headers"]).get(b"accept-encoding", b"").decode("latin-1")
            response = self.site.response_for(scope["path"], accept)
            if response is not None:
                await response(scope, receive, send)
                return
        await self.not_found(scope, receive, send)


def find_build(portal_dir: str | None) -> Path | None:
    """The build folder to serve: PORTAL_DIR when set (it must hold a build), else
    `portal/build` under the working directory when it was built, else None (no portal)."""
    if portal_dir:
        return Path(portal_dir)
    default = Path("portal/build")
    return default if (default / FALLBACK).is_file() else None


def install_portal(app: Starlette, portal_dir: str | None) -> PortalSite | None:
    """Serve the portal's build for the paths nothing else answers; None when not built.

    A PORTAL_DIR that holds no build is refused (ValueError) rather than silently ignored.
    """
    root = find_build(portal_dir)
    if root is None:
        log.info("portal: not built (npm run build in portal/), not served")
        return None
    site = PortalSite.load(root)
    app.router.default = PortalFallback(site, app.router.not_found)
    log.info("portal: serving %s", site.root)
    return site
