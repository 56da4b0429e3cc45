"""Mails are rows first: each is written to `mail_outbox` in the transaction of what
causes it (a sign-up, a reset request), so a mail exists exactly when its cause committed,
and the sender (controlplane.mail.sender) delivers it afterwards, at least once.

The links carry a one-time token: 32 random bytes, of which only the SHA-256 is kept in
`user_tokens`, with an expiry; using one consumes it (and any older one of the same kind).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta
from typing import Any, Literal

from controlplane.config import Settings
from controlplane.crypto import random_token
from controlplane.db import Executor, load_queries

Q = load_queries("controlplane.mail")
Purpose = Literal["verify_email", "reset_password"]
TTL: dict[str, timedelta] = {
    "verify_email": timedelta(hours=48),
    "reset_password": timedelta(hours=1),
}


def hash_token(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


async def new_token(ex: Executor, user_id: uuid.UUID, purpose: Purpose) -> str:
    value = random_token(32)
    await ex.execute(
        Q["token_insert"],
        {"token_hash": hash_token(value), "user_id": user_id, "purpose": purpose,
         "ttl": TTL[purpose]},
    )  # fmt: skip
    return value


async def queue(ex: Executor, *, kind: str, recipient: str, subject: str, body: str) -> int:
    row = await ex.fetch_one(
        Q["outbox_insert"],
        {"kind": kind, "recipient": recipient, "subject": subject, "body": body},
    )
    assert row is not None
    return int(row["id"])


async def queue_verification(ex: Executor, settings: Settings, user: dict[str, Any]) -> None:
    token = await new_token(ex, user["id"], "verify_email")
    link = f"{settings.public_url}/verify-email?token={token}"
    body = (
        "Welcome!\n\n"
        "Please confirm your e-mail address by opening this link within 48 hours:\n\n"
        f"{link}\n\n"
        "If you did not sign up, ignore this mail.\n"
    )
    await queue(ex, kind="verify_email", recipient=user["email"],
                subject="Confirm your e-mail address", body=body)  # fmt: skip


async def queue_reset(ex: Executor, settings: Settings, user: dict[str, Any]) -> None:
    token = await new_token(ex, user["id"], "reset_password")
    link = f"{settings.public_url}/reset-password?token={token}"
    body = (
        "Someone (hopefully you) asked to reset the password of this account.\n\n"
        f"Choose a new password within one hour here:\n\n{link}\n\n"
        "Every session of the account ends when the password changes. If you did not ask,"
        " ignore this mail: the password stays as it is.\n"
    )
    await queue(ex, kind="reset_password", recipient=user["email"],
                subject="Reset your password", body=body)  # fmt: skip


async def queue_registration_attempt(ex: Executor, settings: Settings, email: str) -> None:
    """For the owner of an existing account: someone tried to sign up with the address."""
    body = (
        "Someone tried to create an account with this e-mail address, which already has"
        " one. If it was you, log in instead; if you forgot the password, reset it at\n\n"
        f"{settings.public_url}/forgot-password\n\n"
        "If it was not you, nothing changed and you need not do anything.\n"
    )
    await queue(ex, kind="registration_attempt", recipient=email,
                subject="Sign-up attempt with your e-mail address", body=body)  # fmt: skip
