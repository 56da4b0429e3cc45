"""A node's fleet controls on its page: maintenance, drain (with its progress), and
accepting a changed certificate. Each form calls the same use case as the API."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request, Response

from controlplane.admin.forms import FormErrors, read_form, to_data, validate
from controlplane.admin.guard import CurrentAdmin, actor_of
from controlplane.admin.web import flash_error, redirect_after_change, render
from controlplane.deps import AuditDep, DbDep
from controlplane.errors import NotFound
from controlplane.nodes import service, usecases
from controlplane.nodes.schemas import NodeMaintenance, NodeRepin
from controlplane.operations import drains
from controlplane.operations.schemas import DrainRequest
from controlplane.web.errors import REFUSALS, status_of

router = APIRouter()


async def fleet_of(db: Any, node_id: UUID) -> dict[str, Any]:
    """What the node page's fleet card shows: the node and its latest drain, if any."""
    try:
        drain = await drains.drain_status(db, node_id)
    except NotFound:
        drain = None
    return {"drain": drain}


@router.get("/nodes/{node_id}/fleet")
async def fleet_card(node_id: UUID, request: Request, db: DbDep, _: CurrentAdmin) -> Response:
    """The card alone, for HTMX to refresh while a drain runs."""
    try:
        node = service.public(await service.get_node(db, node_id))
    except REFUSALS as exc:
        return flash_error(request, exc.message, status_of(exc))
    return render(request, "partials/node_fleet.html", {"n": node, **(await fleet_of(db, node_id))})


async def _run(request: Request, node_id: UUID, change: Any) -> Response:
    try:
        await change()
    except FormErrors as exc:
        return flash_error(request, " ".join(exc.errors.values()) or "invalid input", exc.status)
    except REFUSALS as exc:
        return flash_error(request, exc.message, status_of(exc))
    return redirect_after_change(request, f"/admin/nodes/{node_id}")


@router.post("/nodes/{node_id}/maintenance")
async def set_maintenance(
    node_id: UUID, request: Request, db: DbDep, session: CurrentAdmin, audit: AuditDep
) -> Response:
    values = await read_form(request)

    async def change() -> None:
        body = validate(
            NodeMaintenance,
            {"enabled": values.get("enabled") == "true", "reason": values.get("reason") or None},
        )
        await usecases.set_maintenance(db, audit.context(actor_of(session)), node_id, body)

    return await _run(request, node_id, change)


@router.post("/nodes/{node_id}/drain")
async def start_drain(
    node_id: UUID, request: Request, db: DbDep, session: CurrentAdmin, audit: AuditDep
) -> Response:
    values = await read_form(request)

    async def change() -> None:
        body = validate(DrainRequest, to_data(values, fields=DrainRequest.model_fields))
        await drains.start_drain(
            db, audit.context(actor_of(session)), node_id, max_parallel=body.max_parallel
        )

    return await _run(request, node_id, change)


@router.post("/nodes/{node_id}/drain/cancel")
async def cancel_drain(
    node_id: UUID, request: Request, db: DbDep, session: CurrentAdmin, audit: AuditDep
) -> Response:
    async def change() -> None:
        await drains.cancel_drain(db, audit.context(actor_of(session)), node_id)

    return await _run(request, node_id, change)


@router.post("/nodes/{node_id}/repin")
async def repin(
    node_id: UUID, request: Request, db: DbDep, session: CurrentAdmin, audit: AuditDep
) -> Response:
    values = await read_form(request)

    async def change() -> None:
        body = validate(NodeRepin, {"fingerprint": values.get("fingerprint", "")})
        await usecases.repin(db, audit.context(actor_of(session)), node_id, body)

    return await _run(request, node_id, change)
