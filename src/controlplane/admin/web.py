"""Rendering: one handler serves a full page or, for HTMX, just its fragment."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.background import BackgroundTask

from controlplane.admin.sessions import CSRF_HEADER, POLL_HEADER, AdminSession
from controlplane.web import errors

# Read by htmx from <meta name="htmx-config">: no eval, no inline styles it would inject,
# history restores ask for the full page, and form errors (409/422) are swapped in.
HTMX_CONFIG = {
    "includeIndicatorStyles": False,
    "allowEval": False,
    "allowScriptTags": False,
    "selfRequestsOnly": True,
    "historyRestoreAsHxRequest": False,
    "responseHandling": [
        {"code": "204", "swap": False},
        {"code": "[23]..", "swap": True},
        {"code": "409|422", "swap": True, "error": False},
        {"code": "[45]..", "swap": False, "error": True},
    ],
}
# A tenant in one of these states changes by itself; its page polls while one is shown.
FINAL_STATUSES = frozenset({"active", "suspended", "error", "deleted"})
POLL_MS = 1500
IDLE_POLL_MS = 10_000


def is_htmx(request: Request) -> bool:
    """An HTMX request for a fragment (not a boosted navigation or a history restore)."""
    headers = request.headers
    return (
        headers.get("HX-Request") == "true"
        and headers.get("HX-Boosted") != "true"
        and headers.get("HX-History-Restore-Request") != "true"
    )


def _ago(value: datetime | str | None) -> str:
    if value is None:
        return "never"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    seconds = int((datetime.now(UTC) - value).total_seconds())
    if seconds < 0:
        return "in the future"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def _when(value: datetime | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _percent(part: float | None, whole: float | None) -> int:
    if not part or not whole:
        return 0
    return max(0, min(100, round(100 * part / whole)))


@cache
def templates() -> Jinja2Templates:
    folder = Path(str(resources.files("controlplane.admin").joinpath("templates")))
    t = Jinja2Templates(directory=folder)
    t.env.filters["ago"] = _ago
    t.env.filters["when"] = _when
    t.env.filters["tojson_attr"] = lambda v: json.dumps(v, separators=(",", ":"))
    t.env.globals["percent"] = _percent
    t.env.globals["FINAL_STATUSES"] = FINAL_STATUSES
    t.env.globals["POLL_MS"] = POLL_MS
    t.env.globals["IDLE_POLL_MS"] = IDLE_POLL_MS
    t.env.globals["HTMX_CONFIG"] = json.dumps(HTMX_CONFIG, separators=(",", ":"))
    t.env.globals["CSRF_HEADER"] = CSRF_HEADER
    t.env.globals["POLL_HEADERS"] = json.dumps({POLL_HEADER: "1"})
    t.env.globals["urlencode"] = urlencode
    return t


def render(
    request: Request,
    page: str,
    context: dict[str, Any],
    *,
    partial: str | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
    background: BackgroundTask | None = None,
) -> HTMLResponse:
    """The full page, or the `partial` template for an HTMX request."""
    session: AdminSession | None = getattr(request.state, "admin_session", None)
    name = partial if partial is not None and is_htmx(request) else page
    ctx = {
        "admin": session,
        "csrf_token": session.csrf_token if session else getattr(request.state, "pre_csrf", ""),
        **context,
    }
    response = templates().TemplateResponse(
        request, name, ctx, status_code=status, headers=headers, background=background
    )
    return response  # type: ignore[return-value]


def redirect_after_change(request: Request, url: str) -> Response:
    """After a successful change: HTMX navigates with HX-Redirect, a plain form gets 303."""
    if request.headers.get("HX-Request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def safe_next(value: str | None) -> str:
    """Where to go after login: only a path inside the dashboard, never another site."""
    if value and value.startswith("/admin") and not value.startswith("//") and "\\" not in value:
        return value
    return "/admin"


def login_url(request: Request) -> str:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/admin/login?next=" + quote(here, safe="")


def flash_error(request: Request, message: str, status: int) -> HTMLResponse:
    """A refused action: HTMX shows it in the page's banner; a plain form gets a page."""
    if request.headers.get("HX-Request") == "true":
        return render(
            request,
            "partials/flash.html",
            {"message": message},
            status=status,
            headers={"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"},
        )
    back = request.headers.get("referer") or "/admin"
    return render(
        request,
        "error.html",
        {"message": message, "back": safe_next(_path_of(back))},
        status=status,
    )


def _path_of(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def database_unavailable(request: Request, exc: Exception) -> Response:
    """A database outage on a dashboard page: the page's own banner or error page, not JSON."""
    if request.url.path.startswith("/admin/"):
        response = flash_error(
            request, "The database cannot be reached right now; retry in a few seconds.", 503
        )
        response.headers["Retry-After"] = "5"
        return response
    return await errors.database_error(request, exc)
