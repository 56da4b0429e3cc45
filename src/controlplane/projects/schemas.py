"""Request and response bodies for `/api/v1/projects`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from controlplane.validation import DnsName, SingleLine, Storable

Command = Annotated[str, Field(min_length=1, max_length=4096), Storable]
HealthPath = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^/[\x21-\x7e]*$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ProjectCreate(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=100), SingleLine]
    slug: DnsName
    template_vmid: Annotated[int, Field(ge=100, le=999_999_999)]
    ram_mb: Annotated[int, Field(ge=16, le=1_048_576)] = 512
    cores: Annotated[int, Field(ge=1, le=512)] = 1
    disk_gb: Annotated[int, Field(ge=1, le=65_536)] = 8
    app_port: Annotated[int, Field(ge=1, le=65535)] = 8080
    health_path: HealthPath | None = None
    bootstrap_commands: Annotated[list[Command], Field(max_length=50)] = []
    is_default: bool = False
    self_service: bool = Field(False, description="Users may create tenants from it")


class ProjectUpdate(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=100), SingleLine] | None = None
    slug: DnsName | None = None
    template_vmid: Annotated[int, Field(ge=100, le=999_999_999)] | None = None
    ram_mb: Annotated[int, Field(ge=16, le=1_048_576)] | None = None
    cores: Annotated[int, Field(ge=1, le=512)] | None = None
    disk_gb: Annotated[int, Field(ge=1, le=65_536)] | None = None
    app_port: Annotated[int, Field(ge=1, le=65535)] | None = None
    health_path: HealthPath | None = None
    bootstrap_commands: Annotated[list[Command], Field(max_length=50)] | None = None
    is_default: bool | None = None
    self_service: bool | None = None


class ProjectPublic(BaseModel):
    id: UUID
    name: str
    slug: str
    template_vmid: int
    ram_mb: int
    cores: int
    disk_gb: int
    app_port: int
    health_path: str | None
    bootstrap_commands: list[str]
    is_default: bool
    self_service: bool = Field(description="Users may create tenants from it")
    created_at: datetime
    updated_at: datetime


class UserProject(BaseModel):
    """A project open to users, with the size its tenants get."""

    id: UUID
    slug: str
    name: str
    ram_mb: int
    cores: int
    disk_gb: int
    is_default: bool
