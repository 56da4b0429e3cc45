"""Request and response bodies for `/api/v1/projects`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from controlplane.validation import DnsName, SingleLine, Storable

Command = Annotated[str, Field(min_length=1, max_length=4096), Storable]
HealthPath = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^/[\x21-\x7e]*$")]
# A systemd service unit as `systemctl` names it (the characters systemd allows).
AppService = Annotated[
    str,
    Field(
        min_length=9,
        max_length=255,
        pattern=r"^[A-Za-z0-9:_.\\@-]+\.service$",
        description="The app's systemd unit inside the container, e.g. myapp.service",
    ),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class AppAction(_Strict):
    """A named command users (or admins) may run inside the tenant's container."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]
    command: Command
    confirm: bool = Field(False, description="The UI asks before running it")


def _unique_names(actions: list[AppAction]) -> list[AppAction]:
    names = [a.name for a in actions]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"action names must be unique: {', '.join(dupes)}")
    return actions


AppActions = Annotated[list[AppAction], Field(max_length=20), AfterValidator(_unique_names)]
# A Proxmox storage id (`pve-storage-id`: a letter, then letters, digits, `-`, `_`, `.`).
StorageId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9\-_.]*[a-z0-9]$", max_length=100)]
KeepDays = Annotated[int, Field(ge=0, le=3650)]
ContainerPolicy = Literal["flag", "restart"]
WARM_POOL_MAX = 20
WarmPoolSize = Annotated[
    int,
    Field(
        ge=0,
        le=WARM_POOL_MAX,
        description="Spare containers kept ready per node (cloned, configured, stopped), "
        "so a create skips the clone; 0 keeps none",
    ),
]


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
    app_service: AppService | None = None
    app_actions: AppActions = []
    backup_storage: StorageId = Field("local", description="Proxmox storage for backups")
    keep_backups_days: KeepDays = Field(
        0, description="Days a deleted tenant's backups are kept (0: deleted with it)"
    )
    on_container_stopped: ContainerPolicy = Field(
        "flag", description="A container found stopped or gone: flag it, or repair it at once"
    )
    warm_pool_size: WarmPoolSize = 0


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
    app_service: AppService | None = None
    app_actions: AppActions | None = None
    backup_storage: StorageId | None = None
    keep_backups_days: KeepDays | None = None
    on_container_stopped: ContainerPolicy | None = None
    warm_pool_size: WarmPoolSize | None = None


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
    app_service: str | None = None
    app_actions: list[AppAction] = []
    backup_storage: str = "local"
    keep_backups_days: int = 0
    on_container_stopped: str = "flag"
    warm_pool_size: int = Field(0, description="Spare containers kept ready per node")
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
