"""What the usage routes answer: one archive's points, oldest first."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from controlplane.usage.archives import Timeframe


class _Point(BaseModel):
    model_config = ConfigDict(extra="forbid")

    time: int = Field(description="The point's time, epoch seconds, aligned to the step")
    cpu: float | None = Field(None, description="Share of `maxcpu` in use, 0..1")
    maxcpu: float | None = None
    netin: float | None = Field(None, description="Bytes per second")
    netout: float | None = Field(None, description="Bytes per second")


class TenantUsagePoint(_Point):
    mem: float | None = Field(None, description="Bytes")
    maxmem: float | None = None
    diskread: float | None = Field(None, description="Bytes per second")
    diskwrite: float | None = Field(None, description="Bytes per second")


class NodeUsagePoint(_Point):
    loadavg: float | None = None
    iowait: float | None = None
    memused: float | None = Field(None, description="Bytes")
    memtotal: float | None = None
    swapused: float | None = None
    swaptotal: float | None = None
    rootused: float | None = None
    roottotal: float | None = None


class _Usage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timeframe: Timeframe
    step_s: int = Field(description="Seconds between points")
    read_at: datetime | None = Field(
        description="When this archive was last read from Proxmox (null: not yet)"
    )


class TenantUsage(_Usage):
    points: list[TenantUsagePoint]


class NodeUsage(_Usage):
    points: list[NodeUsagePoint]
