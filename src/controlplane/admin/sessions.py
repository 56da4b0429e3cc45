"""Server-side dashboard sessions, their cookie, and CSRF tokens.

The cookie carries a random token; the database keeps only its SHA-256, the user, the
passkey used, the CSRF synchronizer token, an absolute expiry and the last activity (idle
timeout). A session is checked and touched in one UPDATE; revoking one is a row update, so
every replica sees it at the next request.

Before login there is no session, so the login and setup forms use a signed double-submit
token instead: a random `cp_admin_pre` cookie and an HMAC of it (keyed from
ENCRYPTION_KEY) that the page hands to our script.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from controlplane.config import Settings
from controlplane.db import Database, load_queries

_Q = load_queries("controlplane.admin")

SESSION_COOKIE = "cp_admin_session"
PRE_COOKIE = "cp_admin_pre"
COOKIE_PATH = "/admin"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
POLL_HEADER = "X-Admin-Poll"
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}


@dataclass(frozen=True)
class AdminSession:
    id: uuid.UUID
    admin_user_id: uuid.UUID
    user_name: str
    passkey_id: uuid.UUID | None
    csrf_token: str
    expires_at: datetime


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def origin_host(settings: Settings) -> str:
    return urlsplit(settings.admin_origin).hostname or "localhost"


def is_local(settings: Settings) -> bool:
    host = origin_host(settings)
    return host in _LOCAL_HOSTS or host.endswith(".localhost")


def on_https(settings: Settings) -> bool:
    return urlsplit(settings.admin_origin).scheme == "https"


def cookie_name(settings: Settings, base: str) -> str:
    """`__Host-` + base when the dashboard is on HTTPS: browsers then accept the cookie only
    with Secure, Path=/ and no Domain, so a sibling subdomain (a tenant's app) can neither
    set nor overwrite it. Plain HTTP (local use) cannot have the prefix."""
    return f"__Host-{base}" if on_https(settings) else base


def cookie_options(settings: Settings, max_age: int | None) -> dict[str, Any]:
    """HttpOnly, SameSite=Strict; Secure everywhere but localhost; scoped to /admin, or to
    / as the `__Host-` prefix requires on HTTPS."""
    return {
        "httponly": True,
        "samesite": "strict",
        "secure": on_https(settings) or not is_local(settings),
        "path": "/" if on_https(settings) else COOKIE_PATH,
        "max_age": max_age,
    }


def expire_cookie(settings: Settings) -> dict[str, Any]:
    """What `Response.delete_cookie` needs to remove a cookie set with `cookie_options`."""
    options = cookie_options(settings, None)
    return {k: options[k] for k in ("path", "secure", "httponly", "samesite")}


async def create_session(
    db: Database,
    settings: Settings,
    *,
    admin_user_id: uuid.UUID,
    passkey_id: uuid.UUID | None,
    client_ip: str | None,
    user_agent: str | None,
) -> tuple[str, dict[str, Any]]:
    """A new session; returns the cookie token (shown once) and the row."""
    token = secrets.token_urlsafe(32)
    row = await db.fetch_one(
        _Q["session_insert"],
        {
            "id": uuid.uuid4(),
            "token_hash": hash_token(token),
            "admin_user_id": admin_user_id,
            "passkey_id": passkey_id,
            "csrf_token": secrets.token_urlsafe(32),
            "client_ip": client_ip,
            "user_agent": (user_agent or "")[:300] or None,
            "ttl": settings.admin_session_ttl_s,
        },
    )
    assert row is not None
    return token, row


async def check_session(
    db: Database, settings: Settings, token: str | None, *, touch: bool = True
) -> AdminSession | None:
    """The live session the cookie names, or None (unknown, expired, idle or revoked)."""
    if not token or len(token) > 200:
        return None
    row = await db.fetch_one(
        _Q["session_check"],
        {"token_hash": hash_token(token), "touch": touch, "idle": settings.admin_session_idle_s},
    )
    return None if row is None else AdminSession(**row)


async def revoke_session(db: Database, session_id: uuid.UUID, reason: str) -> bool:
    return (
        await db.fetch_one(_Q["session_revoke"], {"id": session_id, "reason": reason}) is not None
    )


def _pre_key(settings: Settings) -> bytes:
    return hmac.new(settings.encryption_key_bytes, b"controlplane admin csrf v1", "sha256").digest()


def new_pre_token() -> str:
    return secrets.token_urlsafe(32)


def anonymous_csrf(settings: Settings, pre_cookie: str | None) -> str | None:
    """The CSRF token that goes with a pre-login cookie."""
    if not pre_cookie or len(pre_cookie) > 200:
        return None
    return hmac.new(_pre_key(settings), pre_cookie.encode(), "sha256").hexdigest()


def tokens_match(sent: str | None, expected: str | None) -> bool:
    if not sent or not expected:
        return False
    return hmac.compare_digest(sent.encode(), expected.encode())
