"""Login, first-passkey setup, logout and passkey management."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from controlplane.admin import passkeys
from controlplane.admin.forms import FormErrors, read_form, validate
from controlplane.admin.guard import CurrentAdmin, actor_of, client_ip
from controlplane.admin.sessions import (
    PRE_COOKIE,
    SESSION_COOKIE,
    anonymous_csrf,
    cookie_name,
    cookie_options,
    create_session,
    expire_cookie,
    new_pre_token,
    revoke_session,
)
from controlplane.admin.web import is_htmx, redirect_after_change, render, safe_next
from controlplane.deps import Actor, AuditDep, StateDep
from controlplane.validation import SingleLine
from controlplane.web.errors import REFUSALS, status_of

router = APIRouter()

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
AdminName = Annotated[Text, Field(max_length=60, pattern=r"^[\w .@'-]+$"), SingleLine]
PasskeyName = Annotated[Text, Field(max_length=100), SingleLine]
Ticket = Annotated[str, Field(min_length=10, max_length=100)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class SetupStart(_Body):
    setup_token: Annotated[str, Field(min_length=1, max_length=512)]
    admin_name: AdminName
    passkey_name: PasskeyName


class PasskeyStart(_Body):
    passkey_name: PasskeyName


class Finish(_Body):
    ticket: Ticket
    credential: dict[str, Any]
    next: Annotated[str, Field(max_length=500)] | None = None


class Rename(_Body):
    name: PasskeyName


def _logged_in(state: Any, token: str, target: str) -> JSONResponse:
    response = JSONResponse({"ok": True, "redirect": target})
    settings = state.settings
    response.set_cookie(
        cookie_name(settings, SESSION_COOKIE),
        token,
        **cookie_options(settings, settings.admin_session_ttl_s),
    )
    response.delete_cookie(cookie_name(settings, PRE_COOKIE), **expire_cookie(settings))
    return response


@router.get("/login")
async def login_page(request: Request, state: StateDep, next: str | None = None) -> Response:
    if getattr(request.state, "admin_session", None) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    pre = request.cookies.get(cookie_name(state.settings, PRE_COOKIE))
    fresh = None
    if not pre or anonymous_csrf(state.settings, pre) is None:
        fresh = new_pre_token()
        request.state.pre_csrf = anonymous_csrf(state.settings, fresh)
    response = render(
        request,
        "login.html",
        {
            "setup_needed": await passkeys.setup_needed(state.db),
            "setup_available": state.settings.setup_token is not None,
            "next": safe_next(next),
            "origin": state.settings.admin_origin,
        },
    )
    if fresh is not None:
        response.set_cookie(
            cookie_name(state.settings, PRE_COOKIE), fresh, **cookie_options(state.settings, None)
        )
    return response


@router.post("/setup/options")
async def setup_options(body: SetupStart, request: Request, state: StateDep) -> dict[str, Any]:
    return await passkeys.begin_setup(
        state.db,
        state.settings,
        setup_token=body.setup_token,
        admin_name=body.admin_name,
        passkey_name=body.passkey_name,
        client_ip=client_ip(request),
    )


@router.post("/setup/verify")
async def setup_verify(
    body: Finish, request: Request, state: StateDep, audit: AuditDep
) -> JSONResponse:
    passkey = await passkeys.finish_setup(
        state.db,
        state.settings,
        ticket=body.ticket,
        credential=body.credential,
        client_ip=client_ip(request),
    )
    actor = Actor(kind="admin", id=str(passkey["admin_user_id"]), label=passkey["user_name"])
    audit(
        actor, "admin.setup", "admin_user", passkey["admin_user_id"], {"passkey": passkey["name"]}
    )
    token, _ = await create_session(
        state.db,
        state.settings,
        admin_user_id=passkey["admin_user_id"],
        passkey_id=passkey["id"],
        client_ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
    )
    audit(
        actor, "admin.login", "admin_user", passkey["admin_user_id"], {"passkey": passkey["name"]}
    )
    return _logged_in(state, token, "/admin")


@router.post("/login/options")
async def login_options(request: Request, state: StateDep) -> dict[str, Any]:
    return await passkeys.begin_login(state.db, state.settings, client_ip=client_ip(request))


@router.post("/login/verify")
async def login_verify(
    body: Finish, request: Request, state: StateDep, audit: AuditDep
) -> JSONResponse:
    passkey = await passkeys.finish_login(
        state.db,
        state.settings,
        ticket=body.ticket,
        credential=body.credential,
        client_ip=client_ip(request),
    )
    token, _ = await create_session(
        state.db,
        state.settings,
        admin_user_id=passkey["admin_user_id"],
        passkey_id=passkey["id"],
        client_ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
    )
    actor = Actor(kind="admin", id=str(passkey["admin_user_id"]), label=passkey["user_name"])
    audit(
        actor, "admin.login", "admin_user", passkey["admin_user_id"], {"passkey": passkey["name"]}
    )
    return _logged_in(state, token, safe_next(body.next))


@router.post("/logout")
async def logout(
    request: Request, state: StateDep, session: CurrentAdmin, audit: AuditDep
) -> Response:
    await revoke_session(state.db, session.id, "logout")
    audit(actor_of(session), "admin.logout", "admin_user", session.admin_user_id)
    response = redirect_after_change(request, "/admin/login")
    response.delete_cookie(
        cookie_name(state.settings, SESSION_COOKIE), **expire_cookie(state.settings)
    )
    return response


# --- passkeys -----------------------------------------------------------------------------


async def _passkeys_page(
    request: Request, state: Any, errors: dict[str, str] | None = None, status: int = 200
) -> Response:
    return render(
        request,
        "passkeys.html",
        {"nav": "passkeys", "passkeys": await passkeys.list_passkeys(state.db), "errors": errors},
        partial="partials/passkeys_table.html",
        status=status,
    )


async def _after_change(request: Request, state: Any) -> Response:
    if is_htmx(request):
        return await _passkeys_page(request, state)
    return RedirectResponse("/admin/passkeys", status_code=303)


@router.get("/passkeys")
async def passkeys_page(request: Request, state: StateDep, _: CurrentAdmin) -> Response:
    return await _passkeys_page(request, state)


@router.post("/passkeys/options")
async def passkey_options(
    body: PasskeyStart, state: StateDep, session: CurrentAdmin
) -> dict[str, Any]:
    return await passkeys.begin_add(
        state.db, state.settings, session, passkey_name=body.passkey_name
    )


@router.post("/passkeys/verify")
async def passkey_verify(
    body: Finish, state: StateDep, session: CurrentAdmin, audit: AuditDep
) -> dict[str, Any]:
    row = await passkeys.finish_add(
        state.db, state.settings, session, ticket=body.ticket, credential=body.credential
    )
    audit(
        actor_of(session), "admin.passkey.create", "admin_passkey", row["id"], {"name": row["name"]}
    )
    return {"ok": True, "redirect": "/admin/passkeys"}


@router.post("/passkeys/{passkey_id}/rename")
async def passkey_rename(
    passkey_id: UUID, request: Request, state: StateDep, session: CurrentAdmin, audit: AuditDep
) -> Response:
    try:
        body = validate(Rename, await read_form(request))
        row = await passkeys.rename_passkey(state.db, passkey_id, body.name)
    except FormErrors as exc:
        return await _passkeys_page(request, state, {"": exc.errors.get("name") or str(exc)}, 422)
    except REFUSALS as exc:
        return await _passkeys_page(request, state, {"": exc.message}, status_of(exc))
    audit(
        actor_of(session),
        "admin.passkey.rename",
        "admin_passkey",
        passkey_id,
        {"name": row["name"]},
    )
    return await _after_change(request, state)


@router.post("/passkeys/{passkey_id}/delete")
async def passkey_delete(
    passkey_id: UUID, request: Request, state: StateDep, session: CurrentAdmin, audit: AuditDep
) -> Response:
    try:
        row = await passkeys.remove_passkey(state.db, passkey_id)
    except REFUSALS as exc:
        return await _passkeys_page(request, state, {"": exc.message}, status_of(exc))
    audit(
        actor_of(session),
        "admin.passkey.delete",
        "admin_passkey",
        passkey_id,
        {"name": row["name"], "revoked_sessions": len(row["revoked_sessions"])},
    )
    if session.id in row["revoked_sessions"]:
        response = redirect_after_change(request, "/admin/login")
        response.delete_cookie(
            cookie_name(state.settings, SESSION_COOKIE), **expire_cookie(state.settings)
        )
        return response
    return await _after_change(request, state)
