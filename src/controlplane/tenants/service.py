"""Tenant rules: placement with RAM reservation, VMID choice, and the state machine.

API calls only record intent and return; the workers (`controlplane.provisioner`) do the
Proxmox work. Every transition is one compare-and-swap; an illegal one is a `Conflict` that
names the current status.

    provisioning -> active <-> suspended        (via suspending / resuming)
          |            |           |
          v            v           v
        error  ----> deleting -> deleted
"""

from __future__ import annotations

import uuid
from typing import Any

from controlplane.db import ConstraintViolation, Executor, load_queries
from controlplane.errors import Conflict, Invalid, NoCapacity, NotFound
from controlplane.tenants.hostnames import TenantHosts, require_tenant_label

_Q = load_queries("controlplane.tenants")

# Which statuses each request may start from, and the status it moves to.
TRANSITIONS: dict[str, tuple[tuple[str, ...], str, str | None]] = {
    "suspend": (("active",), "suspending", "stop"),
    "resume": (("suspended",), "resuming", "start"),
    "delete": (
        ("provisioning", "active", "suspended", "error", "suspending", "resuming"),
        "deleting",
        "stop",
    ),
    "force_delete": (
        ("provisioning", "active", "suspended", "error", "suspending", "resuming", "deleting"),
        "deleting",
        "stop",
    ),
}


async def _check_override(
    db: Executor, node_id: uuid.UUID, *, template: int, needs_ssh: bool
) -> None:
    """An admin's choice of node is refused up front when the tenant could never be made
    there, instead of failing a provisioning step later."""
    node = await db.fetch_one(_Q["override_node"], {"id": node_id})
    if node is None:
        raise NotFound(f"node {node_id} not found", field="node_id")
    if template not in node["templates"]:
        raise Invalid(
            f"node {node_id} does not hold the project's template {template}", field="node_id"
        )
    if needs_ssh and not node["has_ssh"]:
        raise Invalid(
            f"node {node_id} has no SSH access, which the project's bootstrap commands need",
            field="node_id",
        )
    if node["maintenance"]:
        raise Conflict(
            f"node {node_id} is in maintenance; no new tenants go there", field="node_id"
        )


async def create_tenant(
    db: Executor,
    *,
    project: dict[str, Any],
    subdomain: str,
    name: str | None = None,
    owner_user_id: uuid.UUID | None = None,
    node_id: uuid.UUID | None = None,
    hosts: TenantHosts,
    hold_s: float = 0.0,
    audit_row: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Record a tenant in `provisioning`, with its RAM reserved and its VMID chosen.

    With `audit_row` (`AuditContext.row`), its audit entry is written by the same statement,
    with the node and VMID chosen added to its details.

    `hosts` says which subdomains are the operator's (422 naming `subdomain`). With
    `hold_s` (a user creating a tenant), a subdomain whose tenant another user deleted less
    than `hold_s` seconds ago is refused: it stays reserved for that owner for a while, so
    a lapsed or mistaken delete cannot hand their name (and the links and certificates
    pointing at it) to someone else at once. The operator passes no hold.
    """
    require_tenant_label(hosts, subdomain)
    # A VMID taken by a creator on a node with an overlapping range is retried inside
    # tenant_place; what reaches us here is final.
    try:
        return await _create_once(
            db,
            project=project,
            subdomain=subdomain,
            name=name,
            owner_user_id=owner_user_id,
            node_id=node_id,
            hold_s=hold_s,
            audit_row=audit_row,
        )
    except ConstraintViolation as exc:
        if exc.constraint == "tenants_subdomain_live":
            raise Conflict(f"subdomain {subdomain!r} is taken", field="subdomain") from None
        if exc.constraint == "tenants_project_id_fkey":  # deleted while we placed
            raise NotFound(f"project {project['id']} not found", field="project_id") from None
        if exc.constraint == "tenants_owner_user_id_fkey":
            raise NotFound(f"user {owner_user_id} not found", field="owner_user_id") from None
        raise Conflict(f"conflicts with another tenant: {exc}") from None


async def _create_once(
    db: Executor,
    *,
    project: dict[str, Any],
    subdomain: str,
    name: str | None,
    owner_user_id: uuid.UUID | None,
    node_id: uuid.UUID | None,
    hold_s: float = 0.0,
    audit_row: dict[str, Any] | None = None,
) -> dict[str, Any]:
    ram, template = project["ram_mb"], project["template_vmid"]
    if hold_s > 0:
        held = await db.fetch_one(_Q["subdomain_held"], {"subdomain": subdomain, "hold": hold_s})
        if held is not None and held["owner_user_id"] != owner_user_id:
            until = held["held_until"].strftime("%Y-%m-%d %H:%M UTC")
            raise Conflict(
                f"subdomain {subdomain!r} is held for the owner of the deleted tenant "
                f"until {until}",
                field="subdomain",
            )
    needs_ssh = bool(project.get("bootstrap_commands"))
    if node_id is not None:
        await _check_override(db, node_id, template=template, needs_ssh=needs_ssh)
        candidates: list[uuid.UUID | None] = [node_id]
    elif needs_ssh:
        # Only nodes that can run the bootstrap commands, each tried by tenant_place.
        rows = await db.fetch_all(_Q["placement_candidates"], {"template": template, "ram": ram})
        candidates = [r["id"] for r in rows]
    else:
        candidates = [None]  # tenant_place chooses (migration 0015; maintenance: 0014)
    tenant_id = uuid.uuid4()
    for candidate in candidates:
        # One statement (migration 0015): the node's row stays locked only while PostgreSQL
        # runs it, not across round trips, so a burst of creates on one node does not queue.
        # The audit entry rides in the same statement, so it commits with the tenant.
        row = await db.fetch_one(
            _Q["tenant_place_audited"] if audit_row else _Q["tenant_place"],
            {
                **(audit_row or {}),
                "id": tenant_id,
                "name": name or subdomain,
                "subdomain": subdomain,
                "project_id": project["id"],
                "owner_user_id": owner_user_id,
                "node_id": candidate,
                "template": template,
                "ram": ram,
                "cores": project["cores"],
            },
        )
        if row is not None:
            return row
    where = (
        f"node {node_id}"
        if node_id
        else f"any online node holding template {template}"
        + (" with SSH for the project's bootstrap commands" if needs_ssh else "")
        + " (nodes in maintenance are skipped)"
    )
    raise NoCapacity(
        f"no room for {ram} MB (or no free VMID) on {where}; add capacity or free some"
    )


async def next_free_vmid(
    db: Executor | Any, *, start: int, end: int, avoid: list[int] | None = None
) -> int | None:
    """The lowest VMID in [start, end] that no live tenant holds and `avoid` does not list."""
    vmid = await db.fetch_val(
        _Q["vmid_next_free"], {"start": start, "end": end, "avoid": list(avoid or [])}
    )
    return None if vmid is None else int(vmid)


async def get_tenant(
    db: Executor, tenant_id: uuid.UUID, *, owner_user_id: uuid.UUID | None = None
) -> dict[str, Any]:
    row = await db.fetch_one(_Q["tenant_get"], {"id": tenant_id, "owner": owner_user_id})
    if row is None:
        raise NotFound(f"tenant {tenant_id} not found")
    return row


async def list_tenants(
    db: Executor,
    *,
    status: str | None = None,
    node_id: uuid.UUID | None = None,
    project_id: uuid.UUID | None = None,
    owner_user_id: uuid.UUID | None = None,
    include_deleted: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> dict[str, Any]:
    row = await db.fetch_one(
        _Q["tenant_page"],
        {
            "status": status,
            "node_id": node_id,
            "project_id": project_id,
            "owner": owner_user_id,
            "include_deleted": include_deleted,
            "limit": limit,
            "offset": offset,
        },
    )
    assert row is not None
    return {"items": row["items"], "total": row["total"], "limit": limit, "offset": offset}


async def _transition(
    db: Executor,
    tenant_id: uuid.UUID,
    request: str,
    *,
    owner_user_id: uuid.UUID | None,
    allowed: tuple[str, ...],
    to: str,
    step: str | None,
    force: bool = False,
    by: str | None = None,
) -> dict[str, Any]:
    by = by or ("user" if owner_user_id is not None else "admin")
    row = await db.fetch_one(
        _Q["tenant_transition"],
        {
            "id": tenant_id,
            "from": list(allowed),
            "to": to,
            "step": step,
            "owner": owner_user_id,
            "force": force,
            "by": by,
        },
    )
    if row is not None:
        return row
    current = await get_tenant(db, tenant_id, owner_user_id=owner_user_id)
    if current.get("operation_id") is not None and current["status"] in allowed:
        operation = current.get("operation") or {}
        raise Conflict(
            f"cannot {request.replace('_', ' ')} tenant {tenant_id}: operation "
            f"{str(operation.get('kind', '')).replace('_', ' ')} {current['operation_id']} "
            "is in progress"
        )
    if current["status"] == "suspended" and to == "resuming":
        who = {"admin": "the operator", "billing": "billing"}.get(
            current["suspended_by"], "its owner"
        )
        raise Conflict(f"tenant {tenant_id} was suspended by {who}; only they can resume it")
    raise Conflict(
        f"cannot {request.replace('_', ' ')} tenant {tenant_id}: it is {current['status']}"
        f" (allowed from: {', '.join(allowed)})"
    )


async def request_suspend(
    db: Executor,
    tenant_id: uuid.UUID,
    *,
    owner_user_id: uuid.UUID | None = None,
    by: str | None = None,
) -> dict[str, Any]:
    """Suspend; `by` (admin, user, billing; default: user when an owner is given) is kept."""
    allowed, to, step = TRANSITIONS["suspend"]
    return await _transition(
        db,
        tenant_id,
        "suspend",
        owner_user_id=owner_user_id,
        allowed=allowed,
        to=to,
        step=step,
        by=by,
    )


async def request_resume(
    db: Executor,
    tenant_id: uuid.UUID,
    *,
    owner_user_id: uuid.UUID | None = None,
    by: str | None = None,
) -> dict[str, Any]:
    """Resume; refused unless `by` is an admin or whoever suspended the tenant."""
    allowed, to, step = TRANSITIONS["resume"]
    return await _transition(
        db,
        tenant_id,
        "resume",
        owner_user_id=owner_user_id,
        allowed=allowed,
        to=to,
        step=step,
        by=by,
    )


async def request_delete(
    db: Executor,
    tenant_id: uuid.UUID,
    *,
    owner_user_id: uuid.UUID | None = None,
    force: bool = False,
) -> dict[str, Any]:
    key = "force_delete" if force else "delete"
    allowed, to, step = TRANSITIONS[key]
    if force:
        async with db.transaction() as tx:
            await get_tenant(tx, tenant_id, owner_user_id=owner_user_id)
            await tx.execute(_Q["cancel_operation"], {"id": tenant_id})
            return await _transition(
                tx,
                tenant_id,
                key,
                owner_user_id=owner_user_id,
                allowed=allowed,
                to=to,
                step=step,
                force=force,
            )
    return await _transition(
        db,
        tenant_id,
        key,
        owner_user_id=owner_user_id,
        allowed=allowed,
        to=to,
        step=step,
        force=force,
    )


async def request_retry(
    db: Executor, tenant_id: uuid.UUID, *, owner_user_id: uuid.UUID | None = None
) -> dict[str, Any]:
    """Send a tenant in `error` back to the operation that failed (the owner's, if given)."""
    current = await get_tenant(db, tenant_id, owner_user_id=owner_user_id)
    if current["status"] != "error":
        raise Conflict(
            f"cannot retry tenant {tenant_id}: it is {current['status']} (allowed from: error)"
        )
    target = current["failed_status"] or "provisioning"
    # Provisioning resumes at the step that failed (every step is safe to repeat).
    step = (current["error_step"] or "clone") if target == "provisioning" else None
    return await _transition(
        db,
        tenant_id,
        "retry",
        owner_user_id=owner_user_id,
        allowed=("error",),
        to=target,
        step=step,
    )


async def update_tenant(
    db: Executor, tenant_id: uuid.UUID, *, name: str | None, ram_mb: int | None, cores: int | None
) -> dict[str, Any]:
    current = await get_tenant(db, tenant_id)
    if current["status"] in ("deleting", "deleted"):
        raise Conflict(f"cannot change tenant {tenant_id}: it is {current['status']}")
    row = current
    if name is not None:
        row = await db.fetch_one(_Q["tenant_rename"], {"id": tenant_id, "name": name}) or current
    if ram_mb is not None or cores is not None:
        new_ram = ram_mb if ram_mb is not None else current["ram_mb"]
        new_cores = cores if cores is not None else current["cores"]
        resized = await db.fetch_one(
            _Q["tenant_resize"], {"id": tenant_id, "ram": new_ram, "cores": new_cores}
        )
        if resized is None:
            latest = await get_tenant(db, tenant_id)
            if latest.get("operation_id") is not None:
                raise Conflict(
                    f"cannot change tenant {tenant_id}: operation {latest['operation_id']} is"
                    " in progress"
                )
            if latest["status"] in ("deleting", "deleted"):
                raise Conflict(f"cannot change tenant {tenant_id}: it is {latest['status']}")
            raise NoCapacity(f"node has no room for {new_ram} MB", field="ram_mb")
        row = resized
    return row
