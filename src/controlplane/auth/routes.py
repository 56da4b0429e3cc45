"""HTTP for `/api/v1/auth`: sign up, log in, refresh, log out, me, change the password."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response

from controlplane.auth import cookie, service
from controlplane.auth.deps import HasherDep, UserActorDep, UserDep, actor_for
from controlplane.auth.schemas import (
    AuthConfig,
    LoginRequest,
    PasswordChange,
    RefreshRequest,
    RegisterRequest,
    TokenPair,
)
from controlplane.config import Settings
from controlplane.deps import Actor, AuditDep, DbDep, SettingsDep
from controlplane.errors import LoginRefused, Unauthorized
from controlplane.users.schemas import UserPublic
from controlplane.web.errors import ApiError, error_responses

PREFIX = "/api/v1/auth"
router = APIRouter(prefix=PREFIX, tags=["auth"])

# Guessing and flooding targets: these get the tight per-IP limit (RATE_LIMIT_AUTH).
RATE_LIMITED_PATHS = frozenset(
    f"{PREFIX}/{name}"
    for name in (
        "register", "login", "refresh", "password",
        "verify-email", "resend-verification", "forgot-password", "reset-password",
    )
)  # fmt: skip
ANONYMOUS = Actor(kind="anonymous", label="anonymous")


def _no_store(response: Response) -> None:
    response.headers["Cache-Control"] = "no-store"


def _into_cookie(pair: dict[str, Any], response: Response, settings: Settings) -> dict[str, Any]:
    """Move the refresh token out of the answer into the HttpOnly cookie."""
    cookie.set_cookie(response, settings, pair["refresh_token"])
    return {**pair, "refresh_token": None}


OptionalRefresh = Annotated[RefreshRequest | None, Body()]


@router.get("/config", response_model=AuthConfig)
async def auth_config(settings: SettingsDep) -> dict[str, Any]:
    """Public: what sign-up needs (a registration token?) and which account flows exist."""
    return {
        "registration_token_required": settings.registration_token is not None,
        "email_verification_required": settings.email_verification_required,
        "password_reset_available": settings.mail_enabled,
        "billing_enabled": settings.billing_enabled,
    }


@router.post(
    "/register",
    status_code=201,
    response_model=UserPublic,
    responses=error_responses(400, 403, 422, 429),
)
async def register(
    body: RegisterRequest,
    db: DbDep,
    settings: SettingsDep,
    hasher: HasherDep,
    audit: AuditDep,
) -> dict[str, Any]:
    """Create an account. Log in afterwards with the same e-mail and password.

    An address that has an account already gets the same answer (no second account is
    made), so this cannot be used to find out who has an account."""
    user, existing = await service.register(
        db,
        hasher,
        settings,
        email=body.email,
        password=body.password,
        registration_token=body.registration_token,
    )
    if existing is None:
        audit(actor_for(user["id"], user["email"]), "user.register", "user", user["id"])
    else:
        audit(ANONYMOUS, "user.register_existing", "user", existing, {"email": body.email})
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
    except LoginRefused as exc:
        details = {"email": body.email, "reason": exc.reason}
        audit(ANONYMOUS, "auth.login_failed", "user", exc.user_id, details)
        raise
    audit(actor_for(user["id"], user["email"]), "auth.login", "user", user["id"])
    if body.refresh_in_cookie:
        return _into_cookie(pair, response, settings)
    return pair


@router.post("/refresh", response_model=TokenPair, responses=error_responses(400, 401, 422, 429))
async def refresh(
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    audit: AuditDep,
    response: Response,
    body: OptionalRefresh = None,
) -> dict[str, Any]:
    """Trade a refresh token for a new pair; the presented one stops working.

    With `refresh_token` in the body the new pair comes back in JSON. Without it (no body,
    or `{}`) the `cp_refresh` cookie is used and rotated: the answer's refresh_token is
    null and the cookie holds the new one; a refused cookie is cleared."""
    _no_store(response)
    given = body.refresh_token if body is not None else None
    from_cookie = given is None
    token = given if given is not None else cookie.from_request(request)
    if token is None:
        raise Unauthorized("no refresh token: send refresh_token or the cp_refresh cookie")
    try:
        row, pair = await service.refresh(db, settings, refresh_token=token)
    except Unauthorized as exc:
        if isinstance(exc, service.RefreshReused):
            _audit_reuse(audit, exc)
        if from_cookie:  # the same 401, clearing the refused cookie
            headers = {"set-cookie": cookie.clear_header(settings)}
            raise ApiError(exc.message, status=401, headers=headers) from exc
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
    if from_cookie:
        return _into_cookie(pair, response, settings)
    return pair


def _audit_reuse(audit: Any, exc: service.RefreshReused) -> None:
    audit(
        actor_for(exc.user_id),
        "auth.refresh_reuse",
        "user",
        exc.user_id,
        {"family_id": str(exc.family_id), "revoked": exc.revoked, "family_revoked": True},
    )


@router.post("/logout", status_code=204, responses=error_responses(400, 422))
async def logout(
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    audit: AuditDep,
    body: OptionalRefresh = None,
) -> Response:
    """End the session of this refresh token (from the body, else the cp_refresh cookie,
    which is then cleared). Access tokens expire by themselves."""
    given = body.refresh_token if body is not None else None
    token = given if given is not None else cookie.from_request(request)
    ended = await service.logout(db, refresh_token=token) if token is not None else None
    if ended is not None:
        audit(
            actor_for(ended["user_id"]),
            "auth.logout",
            "user",
            ended["user_id"],
            {"family_id": str(ended["family_id"])},
        )
    response = Response(status_code=204)
    if given is None:
        cookie.clear_cookie(response, settings)
    return response


@router.post("/logout-all", status_code=204, responses=error_responses(401))
async def logout_all(
    user: UserDep, actor: UserActorDep, db: DbDep, settings: SettingsDep, audit: AuditDep
) -> Response:
    """Log out everywhere: every refresh token of the user is revoked and every access
    token, this one included, stops working at once. The cp_refresh cookie is cleared."""
    revoked = await service.logout_all(db, user_id=user["id"])
    audit(actor, "auth.logout_all", "user", user["id"], {"revoked": revoked})
    response = Response(status_code=204)
    cookie.clear_cookie(response, settings)
    return response


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
    answer is a fresh pair for this client (with `refresh_in_cookie`, its refresh token
    goes into the cp_refresh cookie, as at login)."""
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
    if body.refresh_in_cookie:
        return _into_cookie(pair, response, settings)
    return pair
