"""Request and response bodies for `/api/v1/tenants`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from controlplane.validation import SingleLine, Subdomain

TenantStatus = Literal[
    "provisioning", "active", "suspending", "suspended", "resuming", "error", "deleting", "deleted"
]
Name = Annotated[str, Field(min_length=1, max_length=100), SingleLine]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class TenantCreate(_Strict):
    project_id: UUID | None = Field(None, description="Defaults to the default project")
    subdomain: Subdomain
    node_id: UUID | None = Field(None, description="Admin override of placement")
    owner_user_id: UUID | None = None
    name: Name | None = None

    # UUIDs arrive as JSON strings; strict mode would refuse them.
    model_config = ConfigDict(extra="forbid", strict=False)


class TenantUpdate(_Strict):
    name: Name | None = None
    ram_mb: Annotated[int, Field(ge=16, le=1_048_576)] | None = None
    cores: Annotated[int, Field(ge=1, le=512)] | None = None


class OperationSummary(BaseModel):
    """The lifecycle operation that has the tenant right now (snapshot, restore ...)."""

    id: UUID
    kind: str
    status: Literal["queued", "running"]
    step: str | None = None


class TenantPublic(BaseModel):
    id: UUID
    name: str
    subdomain: str
    status: TenantStatus
    project_id: UUID | None
    node_id: UUID | None
    owner_user_id: UUID | None
    vmid: int | None
    ip_address: str | None
    # What the container reported when it differs from the pinned `ip_address` (not followed).
    reported_ip_address: str | None = None
    ram_mb: int
    cores: int
    disk_gb: int | None = Field(None, description="The root disk in GB, as last read")
    operation: OperationSummary | None = Field(
        None, description="The operation in progress; the tenant's status stays its own"
    )
    step: str | None
    last_error: str | None
    error_step: str | None
    attempts: int
    config_pending: bool
    health: str | None
    observed: dict[str, Any]
    observed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


class CommandOutput(BaseModel):
    command: str
    exit_status: int | None
    stdout: str
    stderr: str
    at: datetime | None = None


class TenantDetail(TenantPublic):
    command_output: list[CommandOutput]
