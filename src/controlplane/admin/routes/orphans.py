"""Orphans: containers with our tag that no live tenant owns; delete one."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Request, Response

from controlplane.admin.guard import CurrentAdmin, actor_of
from controlplane.admin.web import flash_error, redirect_after_change, render
from controlplane.deps import AuditDep, ProxmoxDep, StateDep
from controlplane.provisioner.orphans import find_orphans
from controlplane.provisioner.routes import remove_and_audit
from controlplane.web.errors import REFUSALS, status_of

router = APIRouter()


@router.get("/orphans")
async def orphans_page(
    request: Request, state: StateDep, proxmox: ProxmoxDep, _: CurrentAdmin
) -> Response:
    scan = await find_orphans(state.db, proxmox)
    return render(
        request,
        "orphans.html",
        {"nav": "orphans", "orphans": scan.items, "unreachable": scan.unreachable_nodes},
    )


@router.post("/orphans/{node_id}/{vmid}/delete")
async def delete_orphan(
    node_id: UUID,
    vmid: Annotated[int, Path(ge=100, le=999_999_999)],
    request: Request,
    state: StateDep,
    proxmox: ProxmoxDep,
    session: CurrentAdmin,
    audit: AuditDep,
) -> Response:
    try:
        await remove_and_audit(state, proxmox, audit.context(actor_of(session)), node_id, vmid)
    except REFUSALS as exc:
        return flash_error(request, exc.message, status_of(exc))
    return redirect_after_change(request, "/admin/orphans")
