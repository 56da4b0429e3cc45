"""Bodies for users (admin `/api/v1/users`), their own tenants, and the e-mail type."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, computed_field

from controlplane.tenants.schemas import OperationSummary, TenantStatus
from controlplane.users.tenant_view import ErrorReason, UserHealth
from controlplane.validation import DnsName, SingleLine, Subdomain, full_match

_LOCAL = re.compile(r"[^\s@\"(),:;<>\[\]\\]+")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def normalise_email(value: str) -> str:
    """Trim, NFKC, lower-case, domain in its ASCII (IDNA) form; ValueError when malformed."""
    value = unicodedata.normalize("NFKC", value.strip())
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain:
        raise ValueError("must be an e-mail address such as name@example.com")
    if len(local) > 64 or not full_match(_LOCAL, local):
        raise ValueError("has an invalid part before the @")
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise ValueError("has misplaced dots before the @")
    try:
        domain = domain.lower().rstrip(".").encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError("has an invalid domain") from None
    labels = domain.split(".")
    if len(labels) < 2 or not all(full_match(_LABEL, label) for label in labels):
        raise ValueError("has an invalid domain")
    if labels[-1].isdigit():
        raise ValueError("has an invalid domain")
    email = f"{local.lower()}@{domain}"
    if len(email) > 254:
        raise ValueError("is longer than 254 characters")
    return email


Email = Annotated[
    str,
    Field(min_length=3, max_length=320, examples=["ada@example.com"]),
    SingleLine,
    AfterValidator(normalise_email),
]
UserStatus = Literal["active", "disabled"]


class UserPublic(BaseModel):
    id: UUID
    email: str
    email_verified: bool = Field(description="The user followed the link of a verification mail")
    disabled_at: datetime | None
    last_login_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def status(self) -> UserStatus:
        return "disabled" if self.disabled_at else "active"


class UserTenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    subdomain: Subdomain
    name: Annotated[str, Field(min_length=1, max_length=100), SingleLine] | None = None
    project: DnsName | None = Field(
        None,
        description="Slug of a project open to users (GET /api/v1/user/projects); the default"
        " project if absent, when it is open to users",
    )


class UserTenantPublic(BaseModel):
    """What an end user sees of a tenant: no node, VMID, addresses or internal errors."""

    id: UUID
    name: str
    subdomain: str
    url: str
    status: TenantStatus
    project_id: UUID | None
    health: UserHealth | None = Field(
        description="What the last check found, in fixed words (operators see the detail)"
    )
    error_reason: ErrorReason | None = Field(
        description="Why the tenant is in `error`, in fixed words; null in any other status"
    )
    step: str | None = Field(description="The step in progress (clone, start, route, ...)")
    step_started_at: datetime | None = Field(description="When the step in progress began")
    ram_mb: int | None = None
    cores: int | None = None
    disk_gb: int | None = Field(None, description="The root disk in GB, as last read")
    operation: OperationSummary | None = Field(
        None, description="The lifecycle operation in progress (snapshot, backup, ...)"
    )
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
