"""HTTP for `/api/v1/settings`: what the dashboard's settings page edits, for API-only
operators, through the same use case and the same validation."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel, Field

from controlplane.deps import AdminDep, AuditDep, DbDep, SettingsDep
from controlplane.sysconfig import service, usecases
from controlplane.sysconfig.schemas import BillingTier, SystemSettingsUpdate
from controlplane.web.errors import error_responses

router = APIRouter(prefix="/api/v1/settings", tags=["settings"])


class SettingsPut(SystemSettingsUpdate):
    """The settings to change; a key left out keeps its value."""

    # A UUID arrives as a JSON string, which strict mode would refuse.
    default_project: UUID | None = Field(None, strict=False)
    version: str | None = Field(
        None,
        max_length=64,
        description="The `version` you read: a change made by someone else since is a 409",
    )


class SettingsPublic(BaseModel):
    base_domain: str = Field(description="BASE_DOMAIN from the environment (read-only here)")
    default_project: UUID | None
    ram_overcommit: float
    billing_tiers: list[BillingTier]
    version: str = Field(description="Send it back with PUT to refuse lost updates")


def _public(settings: Any, values: dict[str, Any]) -> dict[str, Any]:
    return {**values, "base_domain": settings.base_domain, "version": service.version_of(values)}


@router.get("", response_model=SettingsPublic, responses=error_responses(401, 403))
async def get_settings(db: DbDep, settings: SettingsDep, _: AdminDep) -> dict[str, Any]:
    return _public(settings, await service.get_settings(db))


@router.put(
    "", response_model=SettingsPublic, responses=error_responses(400, 401, 403, 404, 409, 422)
)
async def put_settings(
    body: SettingsPut, db: DbDep, settings: SettingsDep, actor: AdminDep, audit: AuditDep
) -> dict[str, Any]:
    """Change billing tiers, the default project or the RAM overcommit.

    The base domain is refused with a 422 saying why: `BASE_DOMAIN` is its one source of
    truth for routes, `ask` and SSO.
    """
    given = body.model_fields_set - {"version"}
    # Already validated as a SettingsPut: the same fields, the same rules.
    changes = SystemSettingsUpdate.model_construct(
        _fields_set=given, **{key: getattr(body, key) for key in given}
    )
    after = await usecases.update_settings(
        db, audit.context(actor), changes, expected_version=body.version
    )
    return _public(settings, after)
