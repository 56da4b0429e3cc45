"""Self-service auth use cases: register, log in, refresh, log out, change the password.

Refresh tokens rotate: each use marks the presented token used and hands out a new one in
the same family, in one compare-and-swap, so of two concurrent refreshes with one token
exactly one wins. A token that was already rotated and comes back means two parties hold
the session (one of them stole it): the whole family is revoked and the caller is told,
unless the operator allows a grace period (`REFRESH_REUSE_GRACE_S`) for tabs that refresh
at once: within it the rotated token rotates again, into another token of the same family.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from controlplane.auth.passwords import Hasher, check_password, normalise
from controlplane.auth.tokens import (
    ACCESS_TTL,
    REFRESH_TTL,
    hash_refresh_token,
    issue_access_token,
    new_refresh_token,
)
from controlplane.config import Settings
from controlplane.db import Executor, load_queries
from controlplane.errors import (
    AccountDisabled,
    Conflict,
    Forbidden,
    Invalid,
    Unauthorized,
    WrongCredentials,
)
from controlplane.mail import account, outbox
from controlplane.users import service as users

_Q = load_queries("controlplane.auth")


class RefreshReused(Unauthorized):
    """A rotated refresh token was presented again; its family is now revoked."""

    def __init__(self, *, user_id: uuid.UUID, family_id: uuid.UUID, revoked: int) -> None:
        super().__init__(
            "this refresh token was already used; every token of its session is now revoked"
        )
        self.user_id = user_id
        self.family_id = family_id
        self.revoked = revoked


def check_registration_token(settings: Settings, given: str | None) -> None:
    expected = settings.registration_token
    if expected is None:
        return
    # Compare digests of equal length, so neither the value nor its length leaks by timing.
    if given is None or not hmac.compare_digest(
        hashlib.sha256(given.encode()).digest(),
        hashlib.sha256(expected.get_secret_value().encode()).digest(),
    ):
        raise Forbidden("a valid registration_token is required to sign up")


async def _issue(
    ex: users.Executor,
    settings: Settings,
    *,
    user_id: uuid.UUID,
    version: int,
    family_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    value, digest = new_refresh_token()
    await ex.execute(
        _Q["refresh_insert"],
        {
            "id": uuid.uuid4(),
            "user_id": user_id,
            "family_id": family_id or uuid.uuid4(),
            "token_hash": digest,
            "token_version": version,
            "ttl": REFRESH_TTL,
        },
    )
    return {
        "access_token": issue_access_token(settings, user_id=user_id, version=version),
        "token_type": "bearer",
        "expires_in": int(ACCESS_TTL.total_seconds()),
        "refresh_token": value,
        "refresh_expires_in": int(REFRESH_TTL.total_seconds()),
    }


async def register(
    db: Executor,
    hasher: Hasher,
    settings: Settings,
    *,
    email: str,
    password: str,
    registration_token: str | None,
) -> tuple[dict[str, Any], uuid.UUID | None]:
    """The new account's public row, and None; or, for an address that has an account
    already, a row of the same shape and that account's id.

    Sign-up must not tell who has an account: a taken address gets the same status and
    the same shape of answer after the same work (the password is hashed either way),
    and no second account is made. The owner of the address is told by mail instead
    (`mail.account.registration_attempted`, when mail is on); the route audits it.
    """
    check_registration_token(settings, registration_token)
    check_password(password, email=email)
    password_hash = await hasher.hash(password)
    try:
        # The verification mail is recorded with the account, or neither is.
        async with db.transaction() as tx:
            user = await users.create_user(tx, email=email, password_hash=password_hash)
            if settings.mail_enabled:
                await outbox.queue_verification(tx, settings, user)
        return user, None
    except users.EmailTaken:
        existing = await users.user_for_login(db, email)
    # The owner of the address is told, through the outbox (when mail is on).
    await account.registration_attempted(db, settings, email=email)
    now = datetime.now(UTC)
    lookalike = {
        "id": uuid.uuid4(),
        "email": email,
        "email_verified": False,
        "disabled_at": None,
        "last_login_at": None,
        "created_at": now,
        "updated_at": now,
    }
    return lookalike, existing["id"] if existing is not None else None


async def login(
    db: Executor, hasher: Hasher, settings: Settings, *, email: str, password: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The user row and a new token pair; wrong e-mail and wrong password look the same.

    An account (an e-mail address, known or not) that failed `login_account_max_failures`
    times within `login_account_window_s` gets the wrong-password answer, after the same
    work, whatever the password: guesses spread over many addresses gain nothing, and the
    answer does not tell that the limit was reached.
    """
    row = await users.user_for_login(db, email)
    user_id = row["id"] if row is not None else None
    recent = await db.fetch_val(
        _Q["login_failures_recent"], {"email": email, "window": settings.login_account_window_s}
    )
    if recent >= settings.login_account_max_failures:
        await hasher.verify_dummy(password)
        raise WrongCredentials(
            "wrong e-mail or password", user_id=user_id, reason="account_throttled"
        )
    if row is None:
        await hasher.verify_dummy(password)
        await db.execute(_Q["login_failure_record"], {"email": email})
        raise WrongCredentials("wrong e-mail or password", user_id=None, reason="unknown_email")
    if not await hasher.verify(row["password_hash"], password):
        await db.execute(_Q["login_failure_record"], {"email": email})
        raise WrongCredentials(
            "wrong e-mail or password", user_id=row["id"], reason="wrong_password"
        )
    if row["disabled_at"] is not None:
        raise AccountDisabled("this account is disabled", user_id=row["id"], reason="disabled")
    if hasher.needs_rehash(row["password_hash"]):
        new_hash = await hasher.hash(password)
        await users.replace_hash(db, row["id"], old=row["password_hash"], new=new_hash)
    async with db.transaction() as tx:
        await users.record_login(tx, row["id"])
        pair = await _issue(tx, settings, user_id=row["id"], version=row["token_version"])
    await db.execute(_Q["refresh_prune"])
    await db.execute(_Q["login_failures_prune"])
    return row, pair


async def refresh(
    db: Executor, settings: Settings, *, refresh_token: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Rotate: the presented token dies, a new pair in the same family is returned."""
    digest = hash_refresh_token(refresh_token)
    async with db.transaction() as tx:
        won = await tx.fetch_one(_Q["refresh_rotate"], {"token_hash": digest})
        if won is not None:
            pair = await _issue(
                tx,
                settings,
                user_id=won["user_id"],
                version=won["token_version"],
                family_id=won["family_id"],
            )
            return won, pair
    old = await db.fetch_one(_Q["refresh_lookup"], {"token_hash": digest})
    if old is None:
        raise Unauthorized("invalid refresh token")
    if old["used_at"] is not None:
        regranted = await _regrant_within_grace(db, settings, digest)
        if regranted is not None:
            return regranted
        revoked = await _revoke_family(db, old["family_id"], reason="reuse")
        raise RefreshReused(user_id=old["user_id"], family_id=old["family_id"], revoked=revoked)
    if old["expired"]:
        raise Unauthorized("refresh token expired; log in again")
    # Revoked, or the user was disabled or changed the password since.
    raise Unauthorized("refresh token revoked; log in again")


async def _regrant_within_grace(
    db: Executor, settings: Settings, digest: bytes
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """A second pair for a token rotated within `REFRESH_REUSE_GRACE_S`, else None."""
    if settings.refresh_reuse_grace_s <= 0:
        return None
    grace = timedelta(seconds=settings.refresh_reuse_grace_s)
    async with db.transaction() as tx:
        row = await tx.fetch_one(_Q["refresh_regrant"], {"token_hash": digest, "grace": grace})
        if row is None:
            return None
        pair = await _issue(
            tx,
            settings,
            user_id=row["user_id"],
            version=row["token_version"],
            family_id=row["family_id"],
        )
        return {**row, "regranted": True}, pair


async def logout(db: Executor, *, refresh_token: str) -> dict[str, Any] | None:
    """End the session (token family) of `refresh_token`; None if nothing was live."""
    rows = await db.fetch_all(
        _Q["refresh_revoke_family_of"], {"token_hash": hash_refresh_token(refresh_token)}
    )
    if not rows:
        return None
    await _revoke_family(db, rows[0]["family_id"], reason="logout")
    return rows[0]


async def logout_all(db: Executor, *, user_id: uuid.UUID) -> int:
    """End every session of the user: all refresh tokens revoked, all access tokens dead."""
    async with db.transaction() as tx:
        await tx.execute(_Q["user_end_sessions"], {"user_id": user_id})
        return await tx.execute(
            _Q["refresh_revoke_user"], {"user_id": user_id, "reason": "logout_all"}
        )


async def _revoke_family(db: Executor, family_id: uuid.UUID, *, reason: str) -> int:
    """Revoke every live token of a session, including one a concurrent refresh adds.

    A rotation that holds the lock on a token when the revocation starts commits its new
    token after the revoking statement took its snapshot, so that statement cannot see it.
    Repeating until a statement finds nothing live closes the gap: a rotation needs a live
    token, and a statement that finds none leaves nothing to rotate.
    """
    total = 0
    while revoked := await db.execute(
        _Q["refresh_revoke_family"], {"family_id": family_id, "reason": reason}
    ):
        total += revoked
    return total


async def change_password(
    db: Executor,
    hasher: Hasher,
    settings: Settings,
    *,
    user_id: uuid.UUID,
    current_password: str,
    new_password: str,
) -> dict[str, Any]:
    """Needs the current password; revokes every token of the user, returns a new pair."""
    row = await users.user_for_password_change(db, user_id)
    if row is None:
        raise Unauthorized("access token revoked")
    if not await hasher.verify(row["password_hash"], current_password):
        raise Forbidden("the current password is wrong", field="current_password")
    check_password(new_password, email=row["email"], field="new_password")
    if normalise(new_password) == normalise(current_password):
        raise Invalid("new_password must differ from the current one", field="new_password")
    new_hash = await hasher.hash(new_password)
    async with db.transaction() as tx:
        updated = await users.set_password(
            tx, user_id, password_hash=new_hash, expected_version=row["token_version"]
        )
        if updated is None:
            raise Conflict("the account changed while the password was being changed; retry")
        await tx.execute(
            _Q["refresh_revoke_user"], {"user_id": user_id, "reason": "password_change"}
        )
        return await _issue(tx, settings, user_id=user_id, version=updated["token_version"])
