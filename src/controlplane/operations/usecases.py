"""The lifecycle use cases the admin API, the user API and the dashboard share.

Each one is a transaction that starts one operation (`service.begin`) and writes what the
operation needs before any Proxmox call, then an audit entry `tenant.<kind>` naming the
operation. With `owner_user_id` (a user) the tenant must be theirs (else 404) and the
user's billing tier caps snapshots, backups, RAM and disk (402 naming the cap).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from controlplane.audit.context import AuditContext
from controlplane.billing.standing import standing_of
from controlplane.billing.tiers import Tier
from controlplane.config import Settings
from controlplane.db import ConstraintViolation, Executor, load_queries
from controlplane.errors import Conflict, Invalid, NoCapacity, NotFound, PaymentRequired
from controlplane.operations import service
from controlplane.operations.schedule import next_run
from controlplane.operations.schemas import (
    BackupSchedule,
    Confirmation,
    ResizeRequest,
    SnapshotCreate,
)

_Q = load_queries("controlplane.operations")
_BILLING = load_queries("controlplane.billing")


def _by(audit: AuditContext) -> str:
    return audit.actor


async def _tier(tx: Executor, settings: Settings, owner_user_id: uuid.UUID) -> Tier:
    # The user's billing row, locked: two requests of one user are counted one after the
    # other, so two concurrent snapshots can never both fit under the last free place.
    await tx.fetch_one(_BILLING["account_lock"], {"user_id": owner_user_id})
    standing = await standing_of(tx, settings, owner_user_id)
    if standing.hold:
        raise PaymentRequired(f"{standing.hold_reason}: no changes until a payment comes in")
    return standing.tier


async def _usage(tx: Executor, owner_user_id: uuid.UUID, tenant_id: uuid.UUID) -> dict[str, int]:
    row = await tx.fetch_one(_Q["usage"], {"user_id": owner_user_id, "tenant_id": tenant_id})
    assert row is not None
    return {key: int(value) for key, value in row.items()}


def _over(cap: int | None, used: int) -> bool:
    return cap is not None and used + 1 > cap


async def _start(
    db: Executor,
    audit: AuditContext,
    tenant_id: uuid.UUID,
    kind: str,
    params: dict[str, Any],
    *,
    owner_user_id: uuid.UUID | None,
    settings: Settings,
    prepare: Any = None,
) -> dict[str, Any]:
    """The shared shape: one transaction that begins the operation and runs `prepare`."""
    async with db.transaction() as tx:
        tenant = await service.tenant_for_operation(tx, tenant_id, owner_user_id=owner_user_id)
        tier = None
        if owner_user_id is not None:
            tier = await _tier(tx, settings, owner_user_id)
        op = await service.begin(
            tx, tenant, kind, params, by=_by(audit), owner_user_id=owner_user_id
        )
        if prepare is not None:
            await prepare(tx, tenant, op, tier)
        # In the request's own transaction: a kill -9 after the answer keeps who asked.
        await audit.write(
            tx, f"tenant.{kind}", "tenant", tenant_id, {"operation_id": str(op["id"]), **params}
        )
    return op


# -- snapshots -----------------------------------------------------------------------------


async def create_snapshot(
    db: Executor,
    settings: Settings,
    audit: AuditContext,
    tenant_id: uuid.UUID,
    body: SnapshotCreate,
    *,
    owner_user_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    async def prepare(tx: Executor, tenant: dict[str, Any], op: dict[str, Any], tier: Any) -> None:
        if tier is not None and owner_user_id is not None:
            used = (await _usage(tx, owner_user_id, tenant_id))["snapshots"]
            if _over(tier.max_snapshots, used):
                raise PaymentRequired(
                    f"the {tier.name} tier allows {tier.max_snapshots} snapshots over all your "
                    f"tenants; you have {used}",
                    field="max_snapshots",
                )
        try:
            async with tx.transaction() as sp:
                await sp.fetch_one(
                    _Q["snapshot_insert"],
                    {
                        "tenant_id": tenant_id,
                        "name": body.name,
                        "description": body.description,
                        "op_id": op["id"],
                    },
                )
        except ConstraintViolation as exc:
            if exc.constraint == "snapshots_pkey":
                raise Conflict(f"a snapshot named {body.name!r} exists", field="name") from None
            raise

    return await _start(
        db,
        audit,
        tenant_id,
        "snapshot_create",
        {"name": body.name, "description": body.description},
        owner_user_id=owner_user_id,
        settings=settings,
        prepare=prepare,
    )


async def delete_snapshot(
    db: Executor,
    settings: Settings,
    audit: AuditContext,
    tenant_id: uuid.UUID,
    name: str,
    *,
    owner_user_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    async def prepare(tx: Executor, tenant: dict[str, Any], op: dict[str, Any], tier: Any) -> None:
        await service.mark_snapshot(
            tx, tenant_id, name, to="deleting", op_id=op["id"], from_=["ready", "error"]
        )

    return await _start(
        db,
        audit,
        tenant_id,
        "snapshot_delete",
        {"name": name},
        owner_user_id=owner_user_id,
        settings=settings,
        prepare=prepare,
    )


async def rollback_snapshot(
    db: Executor,
    settings: Settings,
    audit: AuditContext,
    tenant_id: uuid.UUID,
    name: str,
    *,
    owner_user_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    async def prepare(tx: Executor, tenant: dict[str, Any], op: dict[str, Any], tier: Any) -> None:
        # Same status, new operation: the swap proves the snapshot is ready right now.
        await service.mark_snapshot(
            tx, tenant_id, name, to="ready", op_id=op["id"], from_=["ready"]
        )

    return await _start(
        db,
        audit,
        tenant_id,
        "snapshot_rollback",
        {"name": name},
        owner_user_id=owner_user_id,
        settings=settings,
        prepare=prepare,
    )


# -- backups -------------------------------------------------------------------------------


async def create_backup(
    db: Executor,
    settings: Settings,
    audit: AuditContext,
    tenant_id: uuid.UUID,
    *,
    owner_user_id: uuid.UUID | None = None,
    scheduled: bool = False,
) -> dict[str, Any]:
    backup_id = uuid.uuid4()

    async def prepare(tx: Executor, tenant: dict[str, Any], op: dict[str, Any], tier: Any) -> None:
        # Scheduled backups are held to their schedule's retention instead (its keep-*
        # total was checked against the cap when the schedule was set).
        if tier is not None and owner_user_id is not None and not scheduled:
            used = (await _usage(tx, owner_user_id, tenant_id))["backups"]
            if _over(tier.max_backups, used):
                raise PaymentRequired(
                    f"the {tier.name} tier allows {tier.max_backups} backups over all your "
                    f"tenants; you have {used}",
                    field="max_backups",
                )
        node = await tx.fetch_one(_Q["node_of"], {"id": tenant["node_id"]})
        if node is None:
            raise Conflict(f"tenant {tenant_id} has no node")
        await tx.fetch_one(
            _Q["backup_insert"],
            {
                "id": backup_id,
                "tenant_id": tenant_id,
                "node_id": node["id"],
                "pve_node": node["pve_node"],
                "storage": tenant["backup_storage"] or "local",
                "scheduled": scheduled,
                "op_id": op["id"],
            },
        )

    return await _start(
        db,
        audit,
        tenant_id,
        "backup_create",
        {"backup_id": str(backup_id), "scheduled": scheduled},
        owner_user_id=owner_user_id,
        settings=settings,
        prepare=prepare,
    )


async def delete_backup(
    db: Executor,
    settings: Settings,
    audit: AuditContext,
    tenant_id: uuid.UUID,
    backup_id: uuid.UUID,
    *,
    owner_user_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    async def prepare(tx: Executor, tenant: dict[str, Any], op: dict[str, Any], tier: Any) -> None:
        await service.mark_backup(
            tx, tenant_id, backup_id, to="deleting", op_id=op["id"], from_=["ready", "error"]
        )

    return await _start(
        db,
        audit,
        tenant_id,
        "backup_delete",
        {"backup_id": str(backup_id)},
        owner_user_id=owner_user_id,
        settings=settings,
        prepare=prepare,
    )


def _confirm(tenant: dict[str, Any], body: Confirmation, what: str) -> None:
    if body.confirm != tenant["subdomain"]:
        raise Invalid(
            f"{what} replaces everything on the container: repeat the tenant's subdomain "
            f"({tenant['subdomain']!r}) in `confirm`",
            field="confirm",
        )


async def restore_backup(
    db: Executor,
    settings: Settings,
    audit: AuditContext,
    tenant_id: uuid.UUID,
    backup_id: uuid.UUID,
    body: Confirmation,
    *,
    owner_user_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    async def prepare(tx: Executor, tenant: dict[str, Any], op: dict[str, Any], tier: Any) -> None:
        _confirm(tenant, body, "a restore")
        row = await service.mark_backup(
            tx, tenant_id, backup_id, to="ready", op_id=op["id"], from_=["ready"]
        )
        if row["node_id"] != tenant["node_id"]:
            raise Conflict(
                f"backup {backup_id} was made on another node than the tenant's; it cannot be "
                "restored here"
            )

    return await _start(
        db,
        audit,
        tenant_id,
        "backup_restore",
        {"backup_id": str(backup_id)},
        owner_user_id=owner_user_id,
        settings=settings,
        prepare=prepare,
    )


# -- rebuild, resize, restart --------------------------------------------------------------


async def rebuild(
    db: Executor,
    settings: Settings,
    audit: AuditContext,
    tenant_id: uuid.UUID,
    body: Confirmation,
    *,
    owner_user_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    async def prepare(tx: Executor, tenant: dict[str, Any], op: dict[str, Any], tier: Any) -> None:
        _confirm(tenant, body, "a rebuild")
        if tenant.get("template_vmid") is None:
            raise Conflict(f"tenant {tenant_id}'s project is gone: nothing to rebuild from")
        # A clone is made on the tenant's own node: the template must be there (a moved
        # tenant may sit on a node without it), or the old container would be destroyed
        # for nothing.
        node = await tx.fetch_one(_Q["node_templates"], {"id": tenant["node_id"]})
        if node is None or tenant["template_vmid"] not in (node["templates"] or []):
            where = node["name"] if node is not None else "its node"
            raise Conflict(
                f"node {where} does not hold template {tenant['template_vmid']}: move the "
                "tenant to a node that does, or copy the template there first"
            )

    return await _start(
        db,
        audit,
        tenant_id,
        "rebuild",
        {},
        owner_user_id=owner_user_id,
        settings=settings,
        prepare=prepare,
    )


async def resize(
    db: Executor,
    settings: Settings,
    audit: AuditContext,
    tenant_id: uuid.UUID,
    body: ResizeRequest,
    *,
    owner_user_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    params = body.model_dump(exclude_none=True)

    async def prepare(tx: Executor, tenant: dict[str, Any], op: dict[str, Any], tier: Any) -> None:
        ram = body.ram_mb if body.ram_mb is not None else tenant["ram_mb"]
        cores = body.cores if body.cores is not None else tenant["cores"]
        if body.disk_gb is not None and tenant.get("disk_gb") is not None:
            if body.disk_gb < tenant["disk_gb"]:
                raise Conflict(
                    f"unable to shrink disk size: the disk is {tenant['disk_gb']} GB and "
                    "Proxmox only grows disks",
                    field="disk_gb",
                )
            if body.disk_gb == tenant["disk_gb"]:
                raise Conflict(f"the disk is already {body.disk_gb} GB", field="disk_gb")
        if tier is not None and owner_user_id is not None:
            await _within_tier(tx, tier, owner_user_id, tenant, ram=ram, disk_gb=body.disk_gb)
        row = await tx.fetch_one(
            _Q["resize_reserve"], {"id": tenant_id, "op_id": op["id"], "ram": ram, "cores": cores}
        )
        if row is None:
            raise NoCapacity(f"the tenant's node has no room for {ram} MB", field="ram_mb")

    return await _start(
        db,
        audit,
        tenant_id,
        "resize",
        params,
        owner_user_id=owner_user_id,
        settings=settings,
        prepare=prepare,
    )


async def _within_tier(
    tx: Executor,
    tier: Tier,
    owner_user_id: uuid.UUID,
    tenant: dict[str, Any],
    *,
    ram: int,
    disk_gb: int | None,
) -> None:
    usage = await tx.fetch_one(_BILLING["usage"], {"user_id": owner_user_id})
    assert usage is not None
    ram_total = int(usage["ram_mb"]) - tenant["ram_mb"] + ram
    if ram_total > tier.max_ram_mb:
        raise PaymentRequired(
            f"the {tier.name} tier allows {tier.max_ram_mb} MB of RAM in total; with this "
            f"change your tenants would use {ram_total} MB",
            field="ram_mb",
        )
    if disk_gb is not None and tier.max_disk_gb is not None:
        other = (await _usage(tx, owner_user_id, tenant["id"]))["other_disk_gb"]
        if other + disk_gb > tier.max_disk_gb:
            raise PaymentRequired(
                f"the {tier.name} tier allows {tier.max_disk_gb} GB of disk in total; with "
                f"this change your tenants would use {other + disk_gb} GB",
                field="max_disk_gb",
            )


async def restart(
    db: Executor,
    settings: Settings,
    audit: AuditContext,
    tenant_id: uuid.UUID,
    *,
    owner_user_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    return await _start(
        db, audit, tenant_id, "restart", {}, owner_user_id=owner_user_id, settings=settings
    )


# -- backup schedule -----------------------------------------------------------------------


async def get_schedule(
    db: Executor, tenant_id: uuid.UUID, *, owner_user_id: uuid.UUID | None = None
) -> dict[str, Any] | None:
    await service.tenant_for_operation(db, tenant_id, owner_user_id=owner_user_id)
    return await db.fetch_one(_Q["schedule_get"], {"tenant_id": tenant_id})


async def set_schedule(
    db: Executor,
    settings: Settings,
    audit: AuditContext,
    tenant_id: uuid.UUID,
    body: BackupSchedule,
    *,
    owner_user_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    async with db.transaction() as tx:
        await service.tenant_for_operation(tx, tenant_id, owner_user_id=owner_user_id)
        if owner_user_id is not None:
            tier = await _tier(tx, settings, owner_user_id)
            keep = body.keep_last + body.keep_daily + body.keep_weekly
            if tier.max_backups is not None and keep > tier.max_backups:
                raise PaymentRequired(
                    f"the {tier.name} tier allows {tier.max_backups} backups; this schedule "
                    f"keeps up to {keep}",
                    field="max_backups",
                )
        row = await tx.fetch_one(
            _Q["schedule_upsert"],
            {
                "tenant_id": tenant_id,
                "frequency": body.frequency,
                "at": body.at,
                "weekday": body.weekday,
                "keep_last": body.keep_last,
                "keep_daily": body.keep_daily,
                "keep_weekly": body.keep_weekly,
                "next_run_at": next_run(datetime.now(UTC), body.frequency, body.at, body.weekday),
            },
        )
    assert row is not None
    audit.record("tenant.backup_schedule", "tenant", tenant_id, body.model_dump(mode="json"))
    return row


async def delete_schedule(
    db: Executor,
    audit: AuditContext,
    tenant_id: uuid.UUID,
    *,
    owner_user_id: uuid.UUID | None = None,
) -> bool:
    await service.tenant_for_operation(db, tenant_id, owner_user_id=owner_user_id)
    gone = await db.fetch_one(_Q["schedule_delete"], {"tenant_id": tenant_id})
    if gone is not None:
        audit.record("tenant.backup_schedule_delete", "tenant", tenant_id)
    return gone is not None


# -- moves ---------------------------------------------------------------------------------


async def move(
    db: Executor,
    settings: Settings,
    audit: AuditContext,
    tenant_id: uuid.UUID,
    node_id: uuid.UUID,
    *,
    drain_id: uuid.UUID | None = None,
    method: str = "auto",
    plan: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Move a tenant to `node_id` (operators only), by restart migration or by backup and
    restore (`moveplan`). The tenant's RAM is reserved on the target now and released on
    the source when the container is there. `plan` is what the request learnt of the
    storages; without it (a drain's moves) the operation's first step decides."""

    async def prepare(tx: Executor, tenant: dict[str, Any], op: dict[str, Any], tier: Any) -> None:
        target = await tx.fetch_one(_Q["move_target"], {"id": node_id})
        if target is None:
            raise NotFound(f"node {node_id} not found", field="node_id")
        if node_id == tenant["node_id"]:
            raise Conflict(
                f"tenant {tenant_id} is on node {target['name']} already", field="node_id"
            )
        if target["status"] != "online":
            raise Conflict(f"node {target['name']} is {target['status']}", field="node_id")
        reserved = await tx.fetch_one(
            _Q["reserve_on_target"], {"id": node_id, "ram": tenant["ram_mb"]}
        )
        if reserved is None:
            raise NoCapacity(
                f"node {target['name']} has no room for {tenant['ram_mb']} MB", field="node_id"
            )
        if tenant["node_id"] != current["node_id"]:
            raise Conflict(f"tenant {tenant_id} moved meanwhile; try again")
        if drain_id is not None:
            await tx.execute(_Q["operation_set_drain"], {"id": op["id"], "drain_id": drain_id})
        if plan is not None:
            await tx.execute(_Q["move_set_method"], {"id": op["id"], "method": plan["method"]})
            op["method"] = plan["method"]

    # The source is fixed when the operation starts: the switch swaps from it exactly once.
    current = await service.tenant_for_operation(db, tenant_id, owner_user_id=None)
    return await _start(
        db,
        audit,
        tenant_id,
        "move",
        {
            "target_node_id": str(node_id),
            "source_node_id": str(current["node_id"]),
            "method": method,
            **({"plan": plan} if plan is not None else {}),
        },
        owner_user_id=None,
        settings=settings,
        prepare=prepare,
    )


async def repair(
    db: Executor, settings: Settings, audit: AuditContext, tenant_id: uuid.UUID
) -> dict[str, Any]:
    """Bring back a container that stopped or vanished behind our back (operators): start
    it again; recreate a missing one from its latest backup on its node, or from the
    project's template; always with the tenant's VMID, subdomain, route and owner."""
    return await _start(db, audit, tenant_id, "repair", {}, owner_user_id=None, settings=settings)
