"""FastAPI dependencies of the dashboard: who is logged in, and the CSRF check.

`guard` runs before every route of the admin router (it is a router dependency). It loads
the session from its cookie once per request, and refuses any unsafe method (POST, PUT,
PATCH, DELETE) that does not carry the CSRF token of that session (or, on the few public
login and setup endpoints, the token that goes with the pre-login cookie) in the
`X-CSRF-Token` header or a `csrf_token` form field. A foreign `Origin`, or a
`Sec-Fetch-Site` other than same-origin, is refused too.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from controlplane.admin.sessions import (
    CSRF_FIELD,
    CSRF_HEADER,
    POLL_HEADER,
    PRE_COOKIE,
    SESSION_COOKIE,
    AdminSession,
    anonymous_csrf,
    check_session,
    cookie_name,
    tokens_match,
)
from controlplane.admin.web import login_url
from controlplane.deps import Actor, StateDep
from controlplane.errors import Forbidden
from controlplane.web.errors import ApiError

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Unsafe endpoints that work without a session (they start or finish a login).
PUBLIC_POSTS = frozenset(
    {"/admin/login/options", "/admin/login/verify", "/admin/setup/options", "/admin/setup/verify"}
)
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# Requests a page makes by itself that cannot carry X-Admin-Poll (an EventSource sends no
# headers of ours): like polls, they do not keep an idle session alive.
BACKGROUND_PATHS = frozenset({"/admin/events"})


def client_ip(request: Request) -> str:
    ip = getattr(request.state, "client_ip", None)
    if ip:
        return str(ip)
    return request.client.host if request.client else "unknown"


def login_required(request: Request) -> ApiError:
    if request.headers.get("HX-Request") == "true":
        return ApiError(
            "your session has ended; log in again",
            status=401,
            headers={"HX-Redirect": "/admin/login"},
        )
    accept = request.headers.get("accept", "")
    if request.method == "GET" and "text/html" in accept:
        return ApiError("log in first", status=303, headers={"Location": login_url(request)})
    return ApiError("log in to the dashboard first", status=401)


async def _sent_token(request: Request) -> str | None:
    sent = request.headers.get(CSRF_HEADER)
    if sent is not None:
        return sent
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(_FORM_TYPES):
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def guard(request: Request, state: StateDep) -> None:
    settings = state.settings
    session = await check_session(
        state.db,
        settings,
        request.cookies.get(cookie_name(settings, SESSION_COOKIE)),
        touch=request.headers.get(POLL_HEADER) != "1" and request.url.path not in BACKGROUND_PATHS,
    )
    request.state.admin_session = session
    request.state.pre_csrf = (
        anonymous_csrf(settings, request.cookies.get(cookie_name(settings, PRE_COOKIE))) or ""
    )
    if request.method in SAFE_METHODS:
        return
    # Browsers send `Origin: null` for our own forms (Referrer-Policy: no-referrer), so the
    # origin can only refuse; Sec-Fetch-Site tells same-origin from same-site, which
    # matters because tenant apps live on sibling subdomains.
    origin = request.headers.get("origin")
    if origin not in (None, "null") and origin.rstrip("/") != settings.admin_origin.rstrip("/"):
        raise Forbidden(f"requests from {origin} are not accepted; use {settings.admin_origin}")
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site != "same-origin":
        raise Forbidden(f"{fetch_site} requests are not accepted")
    if session is None:
        if request.url.path not in PUBLIC_POSTS:
            raise login_required(request)
        expected = request.state.pre_csrf or None
    else:
        expected = session.csrf_token
    if not tokens_match(await _sent_token(request), expected):
        raise Forbidden("missing or invalid CSRF token; reload the page and try again")


async def require_session(request: Request) -> AdminSession:
    session: AdminSession | None = getattr(request.state, "admin_session", None)
    if session is None:
        raise login_required(request)
    return session


CurrentAdmin = Annotated[AdminSession, Depends(require_session)]


def actor_of(session: AdminSession) -> Actor:
    return Actor(kind="admin", id=str(session.admin_user_id), label=session.user_name)
