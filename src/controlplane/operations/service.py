"""Starting operations: the rules and the one transaction each request is.

A request records intent and returns; the operation workers (`operations.worker`) do the
Proxmox work. Starting one is, in a single transaction: insert the operation (the partial
unique index allows one in progress per tenant), swap it into the tenant's row (from the
statuses its kind allows, and only if the tenant has no other), and write what the kind
needs before any Proxmox call (a snapshot's or a backup's row, a new RAM reservation).
Either all of that commits or none of it.
"""

from __future__ import annotations

import uuid
from typing import Any

from psycopg.types.json import Jsonb

from controlplane.db import ConstraintViolation, Executor, load_queries
from controlplane.errors import Conflict, NotFound

_Q = load_queries("controlplane.operations")

# From which tenant statuses each kind may start. A restart needs a running container; the
# rest work on a stopped one too (a suspended tenant stays suspended afterwards).
ALLOWED: dict[str, tuple[str, ...]] = {
    "snapshot_create": ("active", "suspended"),
    "snapshot_delete": ("active", "suspended"),
    "snapshot_rollback": ("active", "suspended"),
    "backup_create": ("active", "suspended"),
    "backup_delete": ("active", "suspended"),
    "backup_restore": ("active", "suspended"),
    "rebuild": ("active", "suspended"),
    "resize": ("active", "suspended"),
    "restart": ("active",),
    "move": ("active", "suspended"),
    "repair": ("active", "suspended"),
}


async def tenant_for_operation(
    db: Executor, tenant_id: uuid.UUID, *, owner_user_id: uuid.UUID | None
) -> dict[str, Any]:
    """The tenant with its project's fields; someone else's (or a deleted one) is a 404."""
    row = await db.fetch_one(_Q["tenant_for_operation"], {"id": tenant_id, "owner": owner_user_id})
    if row is None:
        raise NotFound(f"tenant {tenant_id} not found")
    return row


def describe(op: dict[str, Any]) -> str:
    return f"{op['kind'].replace('_', ' ')} {op['id']} ({op['status']})"


async def _busy(db: Executor, tenant_id: uuid.UUID) -> Conflict:
    current = await db.fetch_one(_Q["operation_in_progress"], {"tenant_id": tenant_id})
    if current is None:
        return Conflict(f"tenant {tenant_id} changed meanwhile; try again")
    return Conflict(f"tenant {tenant_id} is busy: operation {describe(current)} is in progress")


async def begin(
    tx: Executor,
    tenant: dict[str, Any],
    kind: str,
    params: dict[str, Any],
    *,
    by: str,
    owner_user_id: uuid.UUID | None,
) -> dict[str, Any]:
    """Insert the operation and give it the tenant; call inside the request's transaction.

    A tenant with an operation in progress is a 409 naming it; one in a status the kind
    does not start from is a 409 naming the status."""
    op_id = uuid.uuid4()
    try:
        async with tx.transaction() as sp:  # a savepoint: the refusal leaves tx usable
            op = await sp.fetch_one(
                _Q["insert_operation"],
                {
                    "id": op_id,
                    "tenant_id": tenant["id"],
                    "kind": kind,
                    "params": Jsonb(params),
                    "by": by,
                },
            )
    except ConstraintViolation as exc:
        if exc.constraint == "operations_one_per_tenant":
            raise await _busy(tx, tenant["id"]) from None
        raise
    assert op is not None
    claimed = await tx.fetch_one(
        _Q["claim_tenant"],
        {
            "op_id": op_id,
            "kind": kind,
            "tenant_id": tenant["id"],
            "statuses": list(ALLOWED[kind]),
            "owner": owner_user_id,
        },
    )
    if claimed is None:
        raise await _refusal(tx, tenant["id"], kind, owner_user_id)
    return op


async def _refusal(
    db: Executor, tenant_id: uuid.UUID, kind: str, owner_user_id: uuid.UUID | None
) -> Conflict | NotFound:
    current = await db.fetch_one(
        _Q["tenant_for_operation"], {"id": tenant_id, "owner": owner_user_id}
    )
    if current is None:
        return NotFound(f"tenant {tenant_id} not found")
    what = kind.replace("_", " ")
    if current["status"] not in ALLOWED[kind]:
        return Conflict(
            f"cannot {what} tenant {tenant_id}: it is {current['status']}"
            f" (allowed from: {', '.join(ALLOWED[kind])})"
        )
    if current["config_pending"]:
        return Conflict(
            f"cannot {what} tenant {tenant_id}: a size change is still being applied; try again"
        )
    return Conflict(f"cannot {what} tenant {tenant_id}: another operation is in progress")


async def get_operation(
    db: Executor, operation_id: uuid.UUID, *, owner_user_id: uuid.UUID | None = None
) -> dict[str, Any]:
    row = await db.fetch_one(_Q["operation_get"], {"id": operation_id, "owner": owner_user_id})
    if row is None:
        raise NotFound(f"operation {operation_id} not found")
    return row


async def operations_of(
    db: Executor, tenant_id: uuid.UUID, limit: int = 50
) -> list[dict[str, Any]]:
    return await db.fetch_all(_Q["operations_of_tenant"], {"tenant_id": tenant_id, "limit": limit})


async def snapshots_of(db: Executor, tenant_id: uuid.UUID) -> list[dict[str, Any]]:
    return await db.fetch_all(_Q["snapshots_of_tenant"], {"tenant_id": tenant_id})


async def backups_of(db: Executor, tenant_id: uuid.UUID) -> list[dict[str, Any]]:
    return await db.fetch_all(_Q["backups_of_tenant"], {"tenant_id": tenant_id})


async def snapshot(db: Executor, tenant_id: uuid.UUID, name: str) -> dict[str, Any]:
    row = await db.fetch_one(_Q["snapshot_get"], {"tenant_id": tenant_id, "name": name})
    if row is None:
        raise NotFound(f"snapshot {name!r} not found", field="name")
    return row


async def backup(db: Executor, tenant_id: uuid.UUID, backup_id: uuid.UUID) -> dict[str, Any]:
    row = await db.fetch_one(_Q["backup_get"], {"id": backup_id, "tenant_id": tenant_id})
    if row is None:
        raise NotFound(f"backup {backup_id} not found")
    return row


async def mark_snapshot(
    tx: Executor, tenant_id: uuid.UUID, name: str, *, to: str, op_id: uuid.UUID, from_: list[str]
) -> dict[str, Any]:
    row = await tx.fetch_one(
        _Q["snapshot_mark"],
        {"tenant_id": tenant_id, "name": name, "to": to, "op_id": op_id, "from": from_},
    )
    if row is None:
        current = await snapshot(tx, tenant_id, name)
        raise Conflict(f"snapshot {name!r} is {current['status']}", field="name")
    return row


async def mark_backup(
    tx: Executor,
    tenant_id: uuid.UUID,
    backup_id: uuid.UUID,
    *,
    to: str,
    op_id: uuid.UUID,
    from_: list[str],
) -> dict[str, Any]:
    row = await tx.fetch_one(
        _Q["backup_mark"],
        {"id": backup_id, "tenant_id": tenant_id, "to": to, "op_id": op_id, "from": from_},
    )
    if row is None:
        current = await backup(tx, tenant_id, backup_id)
        raise Conflict(f"backup {backup_id} is {current['status']}")
    return row
