"""Request and response bodies of the lifecycle routes (snapshots, backups, rebuild ...)."""

from __future__ import annotations

import re
from datetime import datetime, time
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from controlplane.validation import SingleLine, full_match

OperationKind = Literal[
    "snapshot_create",
    "snapshot_delete",
    "snapshot_rollback",
    "backup_create",
    "backup_delete",
    "backup_restore",
    "rebuild",
    "resize",
    "restart",
    "move",
    "repair",
]
OperationStatus = Literal["queued", "running", "succeeded", "failed"]

# Proxmox's `pve-configid` (`^[a-z][a-z0-9_]+$`, case-insensitive, at most 40), minus the
# names it reserves (`current`, and `vzdump` for its own temporary snapshot).
_SNAPNAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{1,39}")
RESERVED_SNAPSHOT_NAMES = frozenset({"current", "vzdump"})


def _snapshot_name(value: str) -> str:
    if not full_match(_SNAPNAME, value):
        raise ValueError(
            "2 to 40 letters, digits and underscores, starting with a letter (Proxmox's rule)"
        )
    if value.lower() in RESERVED_SNAPSHOT_NAMES:
        raise ValueError(f"{value!r} is a name Proxmox reserves")
    return value


SnapshotName = Annotated[str, AfterValidator(_snapshot_name)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class SnapshotCreate(_Strict):
    name: SnapshotName
    description: Annotated[str, Field(max_length=200), SingleLine] = ""


class Confirmation(_Strict):
    """Rebuild and restore destroy what is on the container now: the body repeats the
    tenant's subdomain to say so."""

    confirm: Annotated[str, Field(min_length=1, max_length=63)]


class ResizeRequest(_Strict):
    ram_mb: Annotated[int, Field(ge=16, le=1_048_576)] | None = None
    cores: Annotated[int, Field(ge=1, le=512)] | None = None
    disk_gb: Annotated[int, Field(ge=1, le=65_536, description="Grow only")] | None = None

    @model_validator(mode="after")
    def _something(self) -> ResizeRequest:
        if self.ram_mb is None and self.cores is None and self.disk_gb is None:
            raise ValueError("give at least one of ram_mb, cores, disk_gb")
        return self


def _clock_time(value: object) -> object:
    if not isinstance(value, str) or not full_match(_CLOCK, value):
        raise ValueError("a time of day as HH:MM (UTC)")
    return value


_CLOCK = re.compile(r"([01]\d|2[0-3]):[0-5]\d")


class BackupSchedule(_Strict):
    frequency: Literal["daily", "weekly"]
    # Strict elsewhere; the time arrives as JSON text, parsed once its shape is checked.
    at: Annotated[
        time,
        BeforeValidator(_clock_time),
        Field(strict=False, description="Time of day, UTC (HH:MM)"),
    ]
    weekday: Annotated[int, Field(ge=0, le=6, description="0 = Monday; weekly only")] | None = None
    keep_last: Annotated[int, Field(ge=0, le=100)] = 1
    keep_daily: Annotated[int, Field(ge=0, le=100)] = 0
    keep_weekly: Annotated[int, Field(ge=0, le=100)] = 0

    @model_validator(mode="after")
    def _consistent(self) -> BackupSchedule:
        if (self.frequency == "weekly") != (self.weekday is not None):
            raise ValueError("weekday is required for a weekly schedule and only for one")
        if self.keep_last + self.keep_daily + self.keep_weekly < 1:
            raise ValueError("keep at least one backup (keep_last, keep_daily or keep_weekly)")
        return self


class BackupSchedulePublic(BaseModel):
    frequency: Literal["daily", "weekly"]
    at: time
    weekday: int | None
    keep_last: int
    keep_daily: int
    keep_weekly: int
    next_run_at: datetime
    last_run_at: datetime | None


class MoveRequest(_Strict):
    node_id: UUID
    method: Literal["auto", "migrate", "backup_restore"] = Field(
        "auto",
        description="auto: a restart migration where Proxmox can migrate the disk, else backup "
        "and restore through a storage both nodes share",
    )

    model_config = ConfigDict(extra="forbid", strict=False)  # a UUID arrives as a string


class DrainRequest(_Strict):
    max_parallel: Annotated[int, Field(ge=1, le=20, description="Moves at once")] = 2


class DrainPublic(BaseModel):
    id: UUID
    node_id: UUID
    status: Literal["running", "cancelled", "done"]
    max_parallel: int
    requested_by: str
    created_at: datetime
    finished_at: datetime | None
    moved: int = Field(description="Tenants moved off the node by this drain")
    failed: int = Field(description="Moves that failed (those tenants stay on the node)")
    in_flight: int
    remaining: int = Field(description="Live tenants still on the node")


class OperationPublic(BaseModel):
    id: UUID
    tenant_id: UUID
    kind: OperationKind
    status: OperationStatus
    params: dict[str, Any]
    state: dict[str, Any] = Field(
        default_factory=dict,
        description="What the steps learnt (a move's `downtime_s`, a backup's `volid` ...)",
    )
    drain_id: UUID | None = None
    method: Literal["migrate", "backup_restore"] | None = Field(
        None, description="How a move crossed (null until it knows, and for other kinds)"
    )
    downtime_s: float | None = Field(
        None, description="A move's downtime: from the container's stop to the route's flip"
    )
    step: str | None
    error: str | None
    upids: dict[str, str]
    requested_by: str
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class UserOperationPublic(BaseModel):
    """A user's view: no Proxmox task ids, and a reason word instead of the error text."""

    id: UUID
    tenant_id: UUID
    kind: OperationKind
    status: OperationStatus
    params: dict[str, Any]
    step: str | None
    error_reason: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class SnapshotPublic(BaseModel):
    name: str
    description: str
    status: Literal["creating", "ready", "deleting", "error"]
    created_at: datetime


class BackupPublic(BaseModel):
    id: UUID
    tenant_id: UUID
    status: Literal["creating", "ready", "deleting", "error"]
    scheduled: bool
    size_bytes: int | None
    created_at: datetime
    finished_at: datetime | None
    expires_at: datetime | None


class BackupDetail(BackupPublic):
    """The operator's view adds where the archive is."""

    pve_node: str
    storage: str
    volid: str | None
