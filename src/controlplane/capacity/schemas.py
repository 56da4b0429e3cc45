"""The body of `GET /api/v1/capacity`."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from pydantic import BaseModel, Field


class Headroom(BaseModel):
    project_id: UUID
    slug: str
    ram_mb: int
    tenants: int = Field(description="More tenants of this project's size that fit")


class RamFigures(BaseModel):
    total_mb: int
    capacity_mb: int = Field(description="Total times the RAM overcommit")
    allocated_mb: int = Field(description="Reserved by tenants")
    used_mb: int | None = Field(description="In use, as Proxmox last reported")
    free_mb: int = Field(description="Capacity not reserved")


class CpuFigures(BaseModel):
    count: int | None = Field(description="CPUs Proxmox reports")
    allocated_cores: int = Field(description="Cores given to tenants")
    usage: float | None = Field(description="Load, 0 to 1, as Proxmox last reported")


class NodeCapacity(BaseModel):
    id: UUID
    name: str
    status: str
    maintenance: bool
    placeable: bool = Field(description="Online and out of maintenance")
    ram: RamFigures
    cpu: CpuFigures
    tenants: int
    headroom: list[Headroom]
    days_until_full: float | None = Field(
        description="From the allocated RAM of the last 30 days; null without growth or history"
    )


class Sample(BaseModel):
    day: date
    total_ram_mb: int
    allocated_ram_mb: int
    used_ram_mb: int | None
    tenants: int


class ClusterCapacity(BaseModel):
    ram: RamFigures
    tenants: int
    headroom: list[Headroom] = Field(description="Over the placeable nodes")
    days_until_full: float | None


class CapacityReport(BaseModel):
    ram_overcommit: float
    nodes: list[NodeCapacity]
    cluster: ClusterCapacity
    samples: list[Sample] = Field(description="Cluster totals per day, the last 30 days")
