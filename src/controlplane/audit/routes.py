"""`GET /api/v1/audit`: the audit log, filtered and paginated."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from controlplane.db import load_queries
from controlplane.deps import AdminDep, DbDep
from controlplane.validation import IsoDateTime, Storable
from controlplane.web.errors import error_responses
from controlplane.web.pagination import Page, PageDep

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])
_Q = load_queries("controlplane.audit")
# A filter is compared with stored text: NUL, which PostgreSQL text cannot hold, is a 422.
Filter = Annotated[str, Storable]


class AuditPublic(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    target_type: str
    target_id: str | None
    details: dict[str, Any]
    client_ip: str | None
    request_id: str | None


@router.get("", response_model=Page[AuditPublic], responses=error_responses(401, 403, 422))
async def list_audit(
    db: DbDep,
    _: AdminDep,
    page: PageDep,
    actor: Annotated[Filter | None, Query(max_length=200)] = None,
    action: Annotated[Filter | None, Query(max_length=100)] = None,
    target_type: Annotated[Filter | None, Query(max_length=50)] = None,
    target_id: Annotated[Filter | None, Query(max_length=100)] = None,
    since: IsoDateTime | None = None,
    until: IsoDateTime | None = None,
) -> dict[str, Any]:
    row = await db.fetch_one(
        _Q["audit_page"],
        {
            "actor": actor,
            "action": action,
            "target_type": target_type,
            "target_id": target_id,
            "since": since,
            "until": until,
            "limit": page.limit,
            "offset": page.offset,
        },
    )
    assert row is not None
    return {
        "items": row["items"],
        "total": row["total"],
        "limit": page.limit,
        "offset": page.offset,
    }
