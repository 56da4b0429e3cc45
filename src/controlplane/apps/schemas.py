"""Bodies of the app management routes (`/api/v1/[user/]tenants/{id}/app...`)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

MAX_LOG_LINES = 1000
MAX_LOG_BYTES = 256 * 1024
MAX_OUTPUT = 16 * 1024  # the tail of stdout and of stderr kept per run


class ActionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    confirm: bool = Field(False, description="Required (true) for an action marked `confirm`")


class AppActionInfo(BaseModel):
    name: str
    confirm: bool


class ServiceState(BaseModel):
    """What `systemctl show` says of the unit (systemd's own words)."""

    load_state: str = Field(description="loaded, not-found ...")
    active_state: str = Field(description="active, inactive, failed, activating ...")
    sub_state: str = Field(description="running, dead, exited ...")
    main_pid: int | None
    restarts: int | None
    active_since: str | None = Field(description="ActiveEnterTimestamp as systemd prints it")
    result: str | None


class Health(BaseModel):
    """The status poller's last answer about the tenant (see README, status poller)."""

    health: str | None
    observed_at: datetime | None


class AppRun(BaseModel):
    id: UUID
    kind: Literal["restart", "action"]
    name: str
    command: str
    actor: str
    status: Literal["running", "done", "failed", "timeout"]
    exit_status: int | None
    stdout: str = Field(description=f"The last {MAX_OUTPUT} bytes")
    stderr: str = Field(description=f"The last {MAX_OUTPUT} bytes")
    error: str | None
    started_at: datetime
    finished_at: datetime | None


class AppStatus(BaseModel):
    service: str | None = Field(description="The project's app_service (null: none declared)")
    state: ServiceState | None
    health: Health
    actions: list[AppActionInfo]
    runs: list[AppRun] = Field(description="The latest restarts and actions, newest first")


class AppLogs(BaseModel):
    service: str
    lines: list[str]
    truncated: bool = Field(description=f"Cut at {MAX_LOG_LINES} lines or {MAX_LOG_BYTES} bytes")
