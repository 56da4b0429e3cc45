"""HTTP for `/api/v1/nodes`: parse, call one service function, answer."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Response

from controlplane.deps import AdminDep, AuditDep, DbDep, NodeVerifierDep, ProxmoxDep, StateDep
from controlplane.nodes import service, usecases
from controlplane.nodes.schemas import (
    NodeCreate,
    NodeMaintenance,
    NodePublic,
    NodeRepin,
    NodeUpdate,
)
from controlplane.web.errors import error_responses
from controlplane.web.pagination import Page, PageDep

router = APIRouter(prefix="/api/v1/nodes", tags=["nodes"])


@router.get("", response_model=Page[NodePublic], responses=error_responses(401, 403, 422))
async def list_nodes(
    db: DbDep,
    _: AdminDep,
    page: PageDep,
    status: Annotated[Literal["unknown", "online", "offline"] | None, Query()] = None,
) -> dict[str, Any]:
    return await service.list_nodes(db, status=status, limit=page.limit, offset=page.offset)


@router.post(
    "",
    status_code=201,
    response_model=NodePublic,
    responses=error_responses(400, 401, 403, 409, 422, 502),
)
async def create_node(
    body: NodeCreate,
    state: StateDep,
    verifier: NodeVerifierDep,
    actor: AdminDep,
    audit: AuditDep,
    response: Response,
) -> dict[str, Any]:
    row = await usecases.create_node(state.db, state.sealer, verifier, audit.context(actor), body)
    response.headers["Location"] = f"/api/v1/nodes/{row['id']}"
    return service.public(row)


@router.get("/{node_id}", response_model=NodePublic, responses=error_responses(401, 403, 404, 422))
async def get_node(node_id: UUID, db: DbDep, _: AdminDep) -> dict[str, Any]:
    return service.public(await service.get_node(db, node_id))


@router.put(
    "/{node_id}",
    response_model=NodePublic,
    responses=error_responses(400, 401, 403, 404, 409, 422, 502),
)
async def update_node(
    node_id: UUID,
    body: NodeUpdate,
    state: StateDep,
    verifier: NodeVerifierDep,
    proxmox: ProxmoxDep,
    actor: AdminDep,
    audit: AuditDep,
) -> dict[str, Any]:
    row = await usecases.update_node(
        state.db,
        state.sealer,
        verifier,
        proxmox,
        audit.context(actor),
        node_id,
        body,
    )
    return service.public(row)


@router.delete("/{node_id}", status_code=204, responses=error_responses(401, 403, 404, 409, 422))
async def delete_node(node_id: UUID, db: DbDep, actor: AdminDep, audit: AuditDep) -> Response:
    await usecases.delete_node(db, audit.context(actor), node_id)
    return Response(status_code=204)


@router.post(
    "/{node_id}/maintenance",
    response_model=NodePublic,
    responses=error_responses(400, 401, 403, 404, 422),
)
async def set_maintenance(
    node_id: UUID, body: NodeMaintenance, db: DbDep, actor: AdminDep, audit: AuditDep
) -> dict[str, Any]:
    """Maintenance on: no new tenant is placed on the node (its tenants keep running)."""
    row = await usecases.set_maintenance(db, audit.context(actor), node_id, body)
    return service.public(row)


@router.post(
    "/{node_id}/repin",
    response_model=NodePublic,
    responses=error_responses(400, 401, 403, 404, 409, 422),
    summary="Accept the certificate a pinned node presents now",
)
async def repin_node(
    node_id: UUID, body: NodeRepin, db: DbDep, actor: AdminDep, audit: AuditDep
) -> dict[str, Any]:
    """When a node's certificate changes, the poller stops talking to it and shows
    `certificate_changed` with the `presented_fingerprint`. After checking it out of band,
    repeat that fingerprint here to pin it (409 if the node presents another one)."""
    row = await usecases.repin(db, audit.context(actor), node_id, body)
    return service.public(row)
