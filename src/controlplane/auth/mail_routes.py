"""HTTP for the e-mail flows under `/api/v1/auth`: verify the address, resend the mail,
forgot and reset the password. The links in the mails open the portal
(`{PUBLIC_URL}/verify-email?token=...`, `{PUBLIC_URL}/reset-password?token=...`), which
posts the token here."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from controlplane.auth.deps import HasherDep, UserActorDep, UserDep, actor_for
from controlplane.auth.schemas import ForgotPassword, ResetPassword, VerifyEmail
from controlplane.deps import AuditDep, DbDep, StateDep
from controlplane.mail import account
from controlplane.state import Services
from controlplane.users.schemas import UserPublic
from controlplane.web.errors import error_responses

PREFIX = "/api/v1/auth"
router = APIRouter(prefix=PREFIX, tags=["auth"])
RATE_LIMITED = ("verify-email", "resend-verification", "forgot-password", "reset-password")


def _wake(state: Services) -> None:
    if state.mail_sender is not None:
        state.mail_sender.wake.set()


@router.post("/verify-email", response_model=UserPublic, responses=error_responses(400, 422, 429))
async def verify_email(body: VerifyEmail, db: DbDep, audit: AuditDep) -> dict[str, Any]:
    """The token from the verification mail; single use. The answer is the user."""
    user = await account.verify_email(db, token=body.token)
    audit(actor_for(user["id"], user["email"]), "user.verify_email", "user", user["id"])
    return user


@router.post("/resend-verification", status_code=202, responses=error_responses(401, 409, 429, 503))
async def resend_verification(
    user: UserDep, actor: UserActorDep, state: StateDep, audit: AuditDep
) -> Response:
    """Another verification mail (409 when the address is already verified)."""
    await account.resend_verification(state.db, state.settings, user)
    _wake(state)
    audit(actor, "user.resend_verification", "user", user["id"])
    return Response(status_code=202)


@router.post("/forgot-password", status_code=202, responses=error_responses(400, 422, 429, 503))
async def forgot_password(body: ForgotPassword, state: StateDep, audit: AuditDep) -> Response:
    """Always 202, whether or not an account has the address (a mail goes out if one
    does); 503 `password_reset_unavailable` when the server sends no mail."""
    await account.forgot_password(state.db, state.settings, email=body.email)
    _wake(state)
    return Response(status_code=202)


@router.post("/reset-password", status_code=204, responses=error_responses(400, 422, 429))
async def reset_password(
    body: ResetPassword, db: DbDep, hasher: HasherDep, audit: AuditDep
) -> Response:
    """The token from the reset mail and a new password; every session of the user ends
    (log in again). A refused password leaves the token usable."""
    user_id = await account.reset_password(
        db, hasher, token=body.token, new_password=body.new_password
    )
    audit(actor_for(user_id), "auth.password_reset", "user", user_id)
    return Response(status_code=204)
