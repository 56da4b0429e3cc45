"""The account flows that go through e-mail: verify the address, reset a forgotten password.

Each writes its mail to the outbox in the transaction that decides it. Tokens are single
use (a compare-and-swap consumes them) and expire; a reset ends every session of the user.
"""

from __future__ import annotations

import uuid
from typing import Any

from controlplane.auth.passwords import Hasher, check_password
from controlplane.config import Settings
from controlplane.db import Executor
from controlplane.errors import Conflict, InvalidToken
from controlplane.mail import outbox
from controlplane.mail.outbox import Q, hash_token
from controlplane.web.errors import ServiceUnavailable


class MailUnavailable(ServiceUnavailable):
    code = "mail_unavailable"


class ResetUnavailable(ServiceUnavailable):
    code = "password_reset_unavailable"


def _invalid() -> InvalidToken:
    return InvalidToken(
        "this link is invalid, expired or already used; ask for a new one", field="token"
    )


async def verify_email(db: Executor, *, token: str) -> dict[str, Any]:
    async with db.transaction() as tx:
        used = await tx.fetch_one(
            Q["token_use"], {"token_hash": hash_token(token), "purpose": "verify_email"}
        )
        if used is None:
            raise _invalid()
        user = await tx.fetch_one(Q["user_verify_email"], {"id": used["user_id"]})
        if user is None:  # disabled meanwhile
            raise _invalid()
        return user


async def resend_verification(db: Executor, settings: Settings, user: dict[str, Any]) -> None:
    if not settings.mail_enabled:
        raise MailUnavailable("this server sends no e-mail (SMTP_URL is not set)")
    if user["email_verified"]:
        raise Conflict("the e-mail address is already verified")
    async with db.transaction() as tx:
        await outbox.queue_verification(tx, settings, user)


async def forgot_password(db: Executor, settings: Settings, *, email: str) -> None:
    """Queue a reset mail if an enabled account has the address; silent otherwise."""
    if not settings.mail_enabled:
        raise ResetUnavailable("password reset by e-mail is not available on this server")
    async with db.transaction() as tx:
        user = await tx.fetch_one(Q["user_by_email"], {"email": email})
        if user is not None and user["disabled_at"] is None:
            await outbox.queue_reset(tx, settings, user)


async def reset_password(
    db: Executor, hasher: Hasher, *, token: str, new_password: str
) -> uuid.UUID:
    """Set the password and end every session; the user's id."""
    digest = hash_token(token)
    user = await db.fetch_one(Q["token_peek"], {"token_hash": digest, "purpose": "reset_password"})
    if user is None or user["disabled_at"] is not None:
        raise _invalid()
    # The password is checked before the token is spent: a refused one can be retried.
    check_password(new_password, email=user["email"], field="new_password")
    password_hash = await hasher.hash(new_password)
    async with db.transaction() as tx:
        used = await tx.fetch_one(
            Q["token_use"], {"token_hash": digest, "purpose": "reset_password"}
        )
        if used is None:
            raise _invalid()  # used by a concurrent request meanwhile
        await tx.execute(
            Q["user_reset_password"], {"id": used["user_id"], "password_hash": password_hash}
        )
        return used["user_id"]  # type: ignore[no-any-return]


async def registration_attempted(db: Executor, settings: Settings, *, email: str) -> None:
    """Tell the owner of an existing address that someone tried to sign up with it (at
    most one such mail per address per hour, so it cannot be used to flood a mailbox)."""
    if not settings.mail_enabled:
        return
    async with db.transaction() as tx:
        if await tx.fetch_one(
            Q["outbox_recent"], {"recipient": email, "kind": "registration_attempt"}
        ):
            return
        await outbox.queue_registration_attempt(tx, settings, email)
