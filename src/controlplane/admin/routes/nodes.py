"""Nodes: list, add (credentials checked against Proxmox when a verifier is wired), edit,
delete (refused while tenants live there)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request, Response

from controlplane.admin import reads
from controlplane.admin.forms import FormErrors, from_api_error, read_form, to_data, validate
from controlplane.admin.guard import CurrentAdmin, actor_of
from controlplane.admin.routes.node_fleet import fleet_of
from controlplane.admin.usage import usage_for
from controlplane.admin.web import flash_error, redirect_after_change, render
from controlplane.deps import AuditDep, DbDep, NodeVerifierDep, ProxmoxDep, StateDep
from controlplane.nodes import service, usecases
from controlplane.nodes.schemas import NodeCreate, NodeUpdate
from controlplane.web.errors import REFUSALS, status_of

router = APIRouter()
SECRETS = ("token_secret", "ssh_private_key")
CHECKBOXES = ("verify_tls",)


@router.get("/nodes")
async def nodes_page(request: Request, db: DbDep, _: CurrentAdmin) -> Response:
    page = await service.list_nodes(db, status=None, limit=200, offset=0)
    return render(
        request,
        "nodes.html",
        {
            "nav": "nodes",
            "nodes": page["items"],
            "total": page["total"],
            "tenants": {str(k): v for k, v in (await reads.live_tenants_per_node(db)).items()},
        },
        partial="partials/nodes_table.html",
    )


def _form(
    request: Request,
    *,
    node: dict[str, Any] | None,
    values: dict[str, Any],
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    return render(
        request,
        "node_form.html",
        {"nav": "nodes", "node": node, "v": values, "errors": errors or {}},
        partial="partials/node_form.html",
        status=status,
    )


NEW_DEFAULTS = {
    "verify_tls": True,
    "vmid_range_start": 10000,
    "vmid_range_end": 19999,
    "ssh_port": 22,
    "ssh_user": "root",
}


@router.get("/nodes/new")
async def new_node(request: Request, _: CurrentAdmin) -> Response:
    return _form(request, node=None, values=NEW_DEFAULTS)


@router.post("/nodes")
async def create_node(
    request: Request,
    state: StateDep,
    verifier: NodeVerifierDep,
    session: CurrentAdmin,
    audit: AuditDep,
) -> Response:
    values = await read_form(request)
    shown = {k: v for k, v in values.items() if k not in SECRETS} | {
        "verify_tls": "verify_tls" in values
    }
    try:
        body = validate(
            NodeCreate, to_data(values, fields=NodeCreate.model_fields, checkboxes=CHECKBOXES)
        )
        await usecases.create_node(
            state.db, state.sealer, verifier, audit.context(actor_of(session)), body
        )
    except FormErrors as exc:
        return _form(request, node=None, values=shown, errors=exc.errors, status=exc.status)
    except REFUSALS as exc:
        err = from_api_error(exc)
        return _form(request, node=None, values=shown, errors=err.errors, status=err.status)
    return redirect_after_change(request, "/admin/nodes")


@router.get("/nodes/{node_id}/edit")
async def edit_node(node_id: UUID, request: Request, db: DbDep, _: CurrentAdmin) -> Response:
    try:
        node = service.public(await service.get_node(db, node_id))
    except REFUSALS as exc:
        return flash_error(request, exc.message, status_of(exc))
    return _form(request, node=node, values=node)


@router.get("/nodes/{node_id}")
async def node_page(node_id: UUID, request: Request, db: DbDep, _: CurrentAdmin) -> Response:
    """A node's facts and its usage graphs."""
    try:
        node = service.public(await service.get_node(db, node_id))
    except REFUSALS as exc:
        return flash_error(request, exc.message, status_of(exc))
    live = await reads.live_tenants_per_node(db)
    return render(
        request,
        "node.html",
        {
            "nav": "nodes",
            "n": node,
            "tenants": live.get(node_id, 0),
            "usage": await usage_for(db, "node", node_id, request),
            **(await fleet_of(db, node_id)),
        },
    )


@router.post("/nodes/{node_id}")
async def update_node(
    node_id: UUID,
    request: Request,
    state: StateDep,
    verifier: NodeVerifierDep,
    proxmox: ProxmoxDep,
    session: CurrentAdmin,
    audit: AuditDep,
) -> Response:
    try:
        current = service.public(await service.get_node(state.db, node_id))
    except REFUSALS as exc:
        return flash_error(request, exc.message, status_of(exc))
    values = await read_form(request)
    shown = {k: v for k, v in values.items() if k not in SECRETS} | {
        "verify_tls": "verify_tls" in values
    }
    try:
        data = to_data(
            values,
            fields=NodeUpdate.model_fields,
            checkboxes=CHECKBOXES,
            keep_empty=("tls_fingerprint",),
        )
        body = validate(NodeUpdate, data)
        # Only what the operator changed: an unchanged connection needs no new check.
        changed = {
            k: v
            for k, v in body.model_dump(exclude_unset=True).items()
            if k in SECRETS or v != current.get(k)
        }
        await usecases.update_node(
            state.db,
            state.sealer,
            verifier,
            proxmox,
            audit.context(actor_of(session)),
            node_id,
            NodeUpdate.model_validate(changed),
        )
    except FormErrors as exc:
        return _form(request, node=current, values=shown, errors=exc.errors, status=exc.status)
    except REFUSALS as exc:
        err = from_api_error(exc)
        return _form(request, node=current, values=shown, errors=err.errors, status=err.status)
    return redirect_after_change(request, "/admin/nodes")


@router.post("/nodes/{node_id}/delete")
async def delete_node(
    node_id: UUID, request: Request, db: DbDep, session: CurrentAdmin, audit: AuditDep
) -> Response:
    try:
        await usecases.delete_node(db, audit.context(actor_of(session)), node_id)
    except REFUSALS as exc:
        return flash_error(request, exc.message, status_of(exc))
    return redirect_after_change(request, "/admin/nodes")
