"""Request and response bodies for `/api/v1/nodes`. Secrets are write-only."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, computed_field, model_validator

from controlplane.validation import (
    DnsName,
    Fingerprint,
    HttpUrl,
    PveNodeName,
    SingleLine,
    Storable,
    TokenId,
    normalise_fingerprint,
)

Secret = Annotated[str, Field(min_length=1, max_length=4096), Storable]


def _header_safe(value: str) -> str:
    if not value.isascii() or not value.isprintable() or " " in value:
        raise ValueError("must be printable ASCII without spaces (Proxmox token secrets are UUIDs)")
    return value


# It travels in the Authorization header to Proxmox, where only ASCII can go.
TokenSecret = Annotated[Secret, AfterValidator(_header_safe)]
VmId = Annotated[int, Field(ge=100, le=999_999_999)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class NodeCreate(_Strict):
    name: DnsName
    api_url: HttpUrl = Field(description="Proxmox API base, e.g. https://pve1.example:8006")
    pve_node: PveNodeName = Field(description="The node's name inside Proxmox")
    token_id: TokenId = Field(description="user@realm!tokenname")
    token_secret: TokenSecret = Field(description="Write-only; sealed at rest, never returned")
    tls_fingerprint: Annotated[Fingerprint | None, AfterValidator(normalise_fingerprint)] = None
    verify_tls: bool = True
    total_ram_mb: Annotated[int, Field(ge=64, le=2**31 - 1)] | None = Field(
        None, description="Defaults to the node's memory as Proxmox reports it"
    )
    vmid_range_start: VmId = 10000
    vmid_range_end: VmId = 19999
    ssh_host: Annotated[str, Field(min_length=1, max_length=253), SingleLine] | None = None
    ssh_port: Annotated[int, Field(ge=1, le=65535)] = 22
    ssh_user: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z_][a-z0-9_-]*$")] = (
        "root"
    )
    ssh_private_key: Secret | None = Field(None, description="Write-only OpenSSH/PEM private key")
    ssh_host_key: Annotated[str, Field(max_length=4096), Storable] | None = Field(
        None, description="The node's SSH host public key (pinned)"
    )

    @model_validator(mode="after")
    def _range(self) -> NodeCreate:
        if self.vmid_range_start > self.vmid_range_end:
            raise ValueError("vmid_range_start must not be greater than vmid_range_end")
        return self


class NodeUpdate(_Strict):
    name: DnsName | None = None
    api_url: HttpUrl | None = None
    pve_node: PveNodeName | None = None
    token_id: TokenId | None = None
    token_secret: TokenSecret | None = None
    tls_fingerprint: Annotated[Fingerprint | None, AfterValidator(normalise_fingerprint)] = None
    verify_tls: bool | None = None
    total_ram_mb: Annotated[int, Field(ge=64, le=2**31 - 1)] | None = None
    vmid_range_start: VmId | None = None
    vmid_range_end: VmId | None = None
    ssh_host: Annotated[str, Field(min_length=1, max_length=253), SingleLine] | None = None
    ssh_port: Annotated[int, Field(ge=1, le=65535)] | None = None
    ssh_user: (
        Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z_][a-z0-9_-]*$")] | None
    ) = None
    ssh_private_key: Secret | None = None
    ssh_host_key: Annotated[str, Field(max_length=4096), Storable] | None = None


class NodePublic(BaseModel):
    id: UUID
    name: str
    api_url: str
    pve_node: str
    token_id: str
    tls_fingerprint: str | None
    verify_tls: bool
    total_ram_mb: int
    allocated_ram_mb: int
    vmid_range_start: int
    vmid_range_end: int
    status: str
    last_seen: datetime | None
    last_error: str | None
    pve_version: str | None
    mem_used_mb: int | None
    cpu: float | None
    cpu_count: int | None = Field(None, description="CPUs Proxmox reports")
    uptime_s: int | None
    templates: list[int]
    ssh_host: str | None
    ssh_port: int
    ssh_user: str
    ssh_host_key: str | None
    has_ssh_key: bool
    maintenance: bool = Field(False, description="Placement skips the node")
    maintenance_reason: str | None = None
    maintenance_since: datetime | None = None
    presented_fingerprint: str | None = Field(
        None,
        description="The certificate the node presents instead of its pin (accept it with "
        "POST /api/v1/nodes/{id}/repin); nothing is sent to the node meanwhile",
    )
    created_at: datetime
    updated_at: datetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def certificate_changed(self) -> bool:
        return self.presented_fingerprint is not None


class NodeMaintenance(BaseModel):
    """Maintenance on: placement skips the node at once; its tenants keep running."""

    model_config = ConfigDict(extra="forbid", strict=True)

    enabled: bool
    reason: Annotated[str, Field(max_length=200), SingleLine, Storable] | None = None


class NodeRepin(BaseModel):
    """Accept the certificate a pinned node presents now: repeat its fingerprint."""

    model_config = ConfigDict(extra="forbid", strict=True)

    fingerprint: Annotated[Fingerprint, AfterValidator(normalise_fingerprint)]
