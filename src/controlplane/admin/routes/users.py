"""Users: list (filter by e-mail and status), disable, enable."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response

from controlplane.admin.guard import CurrentAdmin, actor_of
from controlplane.admin.web import flash_error, redirect_after_change, render
from controlplane.deps import AuditDep, DbDep
from controlplane.users import service, usecases
from controlplane.web.errors import REFUSALS, status_of

router = APIRouter()
PAGE_SIZE = 50


@router.get("/users")
async def users_page(
    request: Request,
    db: DbDep,
    _: CurrentAdmin,
    email: Annotated[str | None, Query(max_length=200)] = None,
    status: Annotated[str | None, Query(pattern="^(active|disabled)?$")] = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    email = (email or "").strip().replace("\x00", "") or None
    page = await service.list_users(
        db, email=email, status=status or None, limit=PAGE_SIZE, offset=offset
    )
    query = {k: v for k, v in (("email", email), ("status", status)) if v}
    return render(
        request,
        "users.html",
        {
            "nav": "users",
            "users": page["items"],
            "total": page["total"],
            "offset": offset,
            "page_size": PAGE_SIZE,
            "filters": {"email": email or "", "status": status or ""},
            "query": urlencode(query),
        },
    )


@router.post("/users/{user_id}/{action}")
async def user_action(
    user_id: UUID, action: str, request: Request, db: DbDep, session: CurrentAdmin,
    audit: AuditDep,
) -> Response:  # fmt: skip
    if action not in ("disable", "enable"):
        return flash_error(request, f"unknown action {action!r}", 404)
    try:
        await usecases.set_disabled(
            db, audit.context(actor_of(session)), user_id, action == "disable"
        )
    except REFUSALS as exc:
        return flash_error(request, exc.message, status_of(exc))
    back = request.headers.get("referer") or ""
    return redirect_after_change(request, back if "/admin/users" in back else "/admin/users")
