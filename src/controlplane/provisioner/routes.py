"""`/api/v1/orphans`: containers with our tag that no live tenant owns."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, Field

from controlplane.audit.context import AuditContext
from controlplane.deps import AdminDep, AuditDep, ProxmoxDep, StateDep
from controlplane.nodes.registry import ProxmoxRegistry
from controlplane.provisioner.addresses import AddressPolicy
from controlplane.provisioner.context import StepContext
from controlplane.provisioner.orphans import find_orphans, remove_orphan
from controlplane.state import Services
from controlplane.web.errors import error_responses

router = APIRouter(prefix="/api/v1/orphans", tags=["orphans"])


class Orphan(BaseModel):
    node_id: UUID
    node: str
    vmid: int
    name: str | None
    status: str | None
    tags: str | None


class UnreachableNode(BaseModel):
    node_id: UUID
    node: str
    reason: str = Field(description="Why the node's containers could not be listed")


class OrphanList(BaseModel):
    items: list[Orphan]
    total: int
    unreachable_nodes: list[UnreachableNode] = Field(
        description="Nodes that could not be read: orphans on them are not in `items`"
    )


@router.get("", response_model=OrphanList, responses=error_responses(401, 403))
async def list_orphans(state: StateDep, proxmox: ProxmoxDep, _: AdminDep) -> dict[str, Any]:
    scan = await find_orphans(state.db, proxmox)
    return {
        "items": scan.items,
        "total": len(scan.items),
        "unreachable_nodes": scan.unreachable_nodes,
    }


@router.delete(
    "/{node_id}/{vmid}", status_code=204, responses=error_responses(401, 403, 404, 409, 422, 502)
)
async def delete_orphan(
    node_id: UUID,
    vmid: Annotated[int, Path(ge=100, le=999_999_999)],
    state: StateDep,
    proxmox: ProxmoxDep,
    actor: AdminDep,
    audit: AuditDep,
) -> Response:
    await remove_and_audit(state, proxmox, audit.context(actor), node_id, vmid)
    return Response(status_code=204)


async def remove_and_audit(
    state: Services, proxmox: ProxmoxRegistry, audit: AuditContext, node_id: UUID, vmid: int
) -> None:
    """The orphan use case the API and the dashboard share: remove it, audit it."""
    ctx = StepContext(
        db=state.db,
        registry=proxmox,
        sealer=state.sealer,
        owner="api",
        route_hook=state.route_hook,
        addresses=AddressPolicy.from_settings(state.settings),
        task_timeout=120.0,
    )
    await remove_orphan(ctx, node_id, vmid)
    audit.record("orphan.delete", "container", f"{node_id}/{vmid}")
