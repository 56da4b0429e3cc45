"""Rules for user accounts: unique e-mails, disabling, and the rows auth needs.

A disabled user is locked out at once: disabling bumps the user's token version, which
every access and refresh token carries, and each authenticated request reads the users
row (one primary-key lookup). Enabling does not bring old tokens back.

Functions that take `ex` run on the pool or inside a caller's transaction.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from controlplane.db import ConstraintViolation, Executor, load_queries
from controlplane.errors import Conflict, NotFound

_Q = load_queries("controlplane.users")


class EmailTaken(Conflict):
    """An account with this e-mail address exists already."""


async def create_user(db: Executor, *, email: str, password_hash: str) -> dict[str, Any]:
    params = {"id": uuid.uuid4(), "email": email, "password_hash": password_hash}
    try:
        row = await db.fetch_one(_Q["user_insert"], params)
    except ConstraintViolation as exc:
        if exc.constraint == "users_email_key":
            raise EmailTaken("an account with this e-mail already exists", field="email") from None
        raise
    assert row is not None
    return row


async def get_user(db: Executor, user_id: uuid.UUID) -> dict[str, Any]:
    row = await db.fetch_one(_Q["user_get"], {"id": user_id})
    if row is None:
        raise NotFound(f"user {user_id} not found")
    return row


async def list_users(
    db: Executor,
    *,
    email: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> dict[str, Any]:
    params = {
        "email": email.strip().lower() if email else None,
        "status": status,
        "since": since,
        "limit": limit,
        "offset": offset,
    }
    row = await db.fetch_one(_Q["user_page"], params)
    assert row is not None
    return {"items": row["items"], "total": row["total"], "limit": limit, "offset": offset}


async def set_disabled(
    db: Executor, user_id: uuid.UUID, disabled: bool
) -> tuple[dict[str, Any], bool]:
    """Disable or enable; returns the row and whether this call changed it (idempotent)."""
    query = _Q["user_disable"] if disabled else _Q["user_enable"]
    row = await db.fetch_one(query, {"id": user_id})
    if row is not None:
        return row, True
    return await get_user(db, user_id), False


# --- rows for authentication (these include the hash and the token version) -----------


async def user_for_login(db: Executor, email: str) -> dict[str, Any] | None:
    return await db.fetch_one(_Q["user_for_login"], {"email": email})


async def user_for_token(db: Executor, user_id: uuid.UUID) -> dict[str, Any] | None:
    return await db.fetch_one(_Q["user_for_token"], {"id": user_id})


async def user_for_password_change(db: Executor, user_id: uuid.UUID) -> dict[str, Any] | None:
    return await db.fetch_one(_Q["user_for_password_change"], {"id": user_id})


async def record_login(ex: Executor, user_id: uuid.UUID) -> None:
    await ex.execute(_Q["user_logged_in"], {"id": user_id})


async def replace_hash(db: Executor, user_id: uuid.UUID, *, old: str, new: str) -> None:
    await db.execute(_Q["user_rehash"], {"id": user_id, "old_hash": old, "new_hash": new})


async def set_password(
    ex: Executor, user_id: uuid.UUID, *, password_hash: str, expected_version: int
) -> dict[str, Any] | None:
    """Store a new hash and bump the token version; None if the row changed meanwhile."""
    return await ex.fetch_one(
        _Q["user_set_password"],
        {"id": user_id, "password_hash": password_hash, "version": expected_version},
    )
