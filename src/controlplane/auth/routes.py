"""HTTP for `/api/v1/auth`: sign up, log in, refresh, log out, me, change the password."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from controlplane.auth import service
from controlplane.auth.deps import HasherDep, UserActorDep, UserDep, actor_for
from controlplane.auth.schemas import (
    LoginRequest,
    PasswordChange,
    RefreshRequest,
    RegisterRequest,
    TokenPair,
)
from controlplane.deps import Actor, AuditDep, DbDep, SettingsDep
from controlplane.users.schemas import UserPublic
from controlplane.web.errors import error_responses

PREFIX = "/api/v1/auth"
router = APIRouter(prefix=PREFIX, tags=["auth"])

# Guessing and flooding targets: these get the tight per-IP limit (RATE_LIMIT_AUTH).
RATE_LIMITED_PATHS = frozenset(
    f"{PREFIX}/{name}" for name in ("register", "login", "refresh", "password")
)
ANONYMOUS = Actor(kind="anonymous", label="anonymous")


def _no_store(response: Response) -> None:
    response.headers["Cache-Control"] = "no-store"


@router.post(
    "/register",
    status_code=201,
    response_model=UserPublic,
    responses=error_responses(400, 403, 409, 422, 429),
)
async def register(
    body: RegisterRequest,
    db: DbDep,
    settings: SettingsDep,
    hasher: HasherDep,
    audit: AuditDep,
) -> dict[str, Any]:
    """Create an account. Log in afterwards with the same e-mail and password."""
    user = await service.register(
        db,
        hasher,
        settings,
        email=body.email,
        password=body.password,
        registration_token=body.registration_token,
    )
    audit(actor_for(user["id"], user["email"]), "user.register", "user", user["id"])
    return user


@router.post("/login", response_model=TokenPair, responses=error_responses(400, 401, 403, 422, 429))
async def login(
    body: LoginRequest,
    db: DbDep,
    settings: SettingsDep,
    hasher: HasherDep,
    audit: AuditDep,
    response: Response,
) -> dict[str, Any]:
    """An access token (15 minutes) and a refresh token (30 days, single use)."""
    _no_store(response)
    try:
        user, pair = await service.login(
            db, hasher, settings, email=body.email, password=body.password
        )
    except service.LoginRefused as exc:
        details = {"email": body.email, "reason": exc.reason}
        audit(ANONYMOUS, "auth.login_failed", "user", exc.user_id, details)
        raise
    audit(actor_for(user["id"], user["email"]), "auth.login", "user", user["id"])
    return pair


@router.post("/refresh", response_model=TokenPair, responses=error_responses(400, 401, 422, 429))
async def refresh(
    body: RefreshRequest,
    db: DbDep,
    settings: SettingsDep,
    audit: AuditDep,
    response: Response,
) -> dict[str, Any]:
    """Trade a refresh token for a new pair; the presented one stops working."""
    _no_store(response)
    try:
        row, pair = await service.refresh(db, settings, refresh_token=body.refresh_token)
    except service.RefreshReused as exc:
        audit(
            actor_for(exc.user_id),
            "auth.refresh_reuse",
            "user",
            exc.user_id,
            {"family_id": str(exc.family_id), "revoked": exc.revoked, "family_revoked": True},
        )
        raise
    if row.get("regranted"):
        # Not an error, but worth a trace: a token came back within the grace period.
        audit(
            actor_for(row["user_id"], row["email"]),
            "auth.refresh_grace",
            "user",
            row["user_id"],
            {"family_id": str(row["family_id"])},
        )
    return pair


@router.post("/logout", status_code=204, responses=error_responses(400, 422))
async def logout(body: RefreshRequest, db: DbDep, audit: AuditDep) -> Response:
    """End the session of this refresh token. Access tokens expire by themselves."""
    ended = await service.logout(db, refresh_token=body.refresh_token)
    if ended is not None:
        audit(
            actor_for(ended["user_id"]),
            "auth.logout",
            "user",
            ended["user_id"],
            {"family_id": str(ended["family_id"])},
        )
    return Response(status_code=204)


@router.get("/me", response_model=UserPublic, responses=error_responses(401))
async def me(user: UserDep) -> dict[str, Any]:
    return user


@router.post(
    "/password", response_model=TokenPair, responses=error_responses(400, 401, 403, 409, 422, 429)
)
async def change_password(
    body: PasswordChange,
    user: UserDep,
    actor: UserActorDep,
    db: DbDep,
    settings: SettingsDep,
    hasher: HasherDep,
    audit: AuditDep,
    response: Response,
) -> dict[str, Any]:
    """Needs the current password. Every existing token of the user stops working; the
    answer is a fresh pair for this client."""
    _no_store(response)
    pair = await service.change_password(
        db,
        hasher,
        settings,
        user_id=user["id"],
        current_password=body.current_password,
        new_password=body.new_password,
    )
    audit(actor, "auth.password_change", "user", user["id"])
    return pair
