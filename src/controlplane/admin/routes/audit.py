"""The audit log: filter by actor, action, target and time; paginated."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from controlplane.admin import reads
from controlplane.admin.forms import FormErrors, validate
from controlplane.admin.guard import CurrentAdmin
from controlplane.admin.web import render
from controlplane.deps import DbDep

router = APIRouter()
PAGE_SIZE = 50


class AuditFilters(BaseModel):
    model_config = ConfigDict(extra="ignore")

    actor: Annotated[str, Field(max_length=200)] | None = None
    action: Annotated[str, Field(max_length=100)] | None = None
    target_type: Annotated[str, Field(max_length=50)] | None = None
    target_id: Annotated[str, Field(max_length=100)] | None = None
    since: datetime | None = None
    until: datetime | None = None
    offset: Annotated[int, Field(ge=0, le=10_000_000)] = 0

    @field_validator("since", "until")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        # <input type="datetime-local"> sends no zone: the page says times are UTC.
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def _query(raw: dict[str, str], **override: Any) -> str:
    values = {k: v for k, v in raw.items() if v and k != "offset"} | override
    return urlencode({k: str(v) for k, v in values.items() if v not in (None, "", 0)})


@router.get("/audit")
async def audit_page(request: Request, db: DbDep, _: CurrentAdmin) -> Response:
    raw = {k: v.strip() for k, v in request.query_params.items()}
    errors: dict[str, str] = {}
    try:
        filters = validate(AuditFilters, {k: v for k, v in raw.items() if v})
    except FormErrors as exc:
        errors = exc.errors
        filters = AuditFilters()
    names = await reads.admin_names(db)
    actor = filters.actor
    if actor is not None:
        # An admin's name stands for their audit identity ("admin:<id>").
        by_name = {name: key for key, name in names.items()}
        actor = by_name.get(actor, actor)
    page = await reads.audit_page(
        db,
        actor=actor,
        action=filters.action,
        target_type=filters.target_type,
        target_id=filters.target_id,
        since=filters.since,
        until=filters.until,
        limit=PAGE_SIZE,
        offset=filters.offset,
    )
    return render(
        request,
        "audit.html",
        {
            "nav": "audit",
            "entries": page["items"],
            "total": page["total"],
            "offset": filters.offset,
            "page_size": PAGE_SIZE,
            "raw": raw,
            "errors": errors,
            "names": names,
            "query": lambda **o: _query(raw, **o),
        },
        partial="partials/audit_table.html",
        status=422 if errors else 200,
    )
