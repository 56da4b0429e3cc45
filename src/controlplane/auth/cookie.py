"""The refresh token in an HttpOnly cookie, for the browser portal.

A page script never sees the refresh token: the portal logs in with
`"refresh_in_cookie": true`, the answer carries the access token only, and the refresh
token travels in `cp_refresh`, a cookie scoped to `/api/v1/auth` (so no other request
carries it), `SameSite=Strict` (no cross-site request carries it either, which is what
keeps a cookie-authenticated refresh or logout from being forged), `HttpOnly`, and
`Secure` whenever PUBLIC_URL is https. API clients keep getting both tokens in JSON.
"""

from __future__ import annotations

from http.cookies import SimpleCookie

from fastapi import Request, Response

from controlplane.auth.tokens import REFRESH_TTL
from controlplane.config import Settings

COOKIE = "cp_refresh"
PATH = "/api/v1/auth"


def from_request(request: Request) -> str | None:
    value = request.cookies.get(COOKIE)
    return value or None


def _secure(settings: Settings) -> bool:
    return settings.public_url.lower().startswith("https://")


def set_cookie(response: Response, settings: Settings, refresh_token: str) -> None:
    response.set_cookie(
        COOKIE,
        refresh_token,
        max_age=int(REFRESH_TTL.total_seconds()),
        path=PATH,
        secure=_secure(settings),
        httponly=True,
        samesite="strict",
    )


def clear_header(settings: Settings) -> str:
    """A `Set-Cookie` value that removes the cookie (for error answers, built elsewhere)."""
    cookie: SimpleCookie = SimpleCookie()
    cookie[COOKIE] = ""
    morsel = cookie[COOKIE]
    morsel["path"] = PATH
    morsel["max-age"] = 0
    morsel["expires"] = "Thu, 01 Jan 1970 00:00:00 GMT"
    morsel["httponly"] = True
    morsel["samesite"] = "strict"
    if _secure(settings):
        morsel["secure"] = True
    return morsel.OutputString()


def clear_cookie(response: Response, settings: Settings) -> None:
    response.headers.append("set-cookie", clear_header(settings))
