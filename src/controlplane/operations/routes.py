"""HTTP for the lifecycle: the same routes for operators and for a tenant's owner.

`/api/v1/tenants/{id}/...` (admin token) and `/api/v1/user/tenants/{id}/...` (the owner;
someone else's tenant is a 404) are built by one factory from one set of handlers, so the
two cannot drift apart. Every change answers 202 with the operation it started; its
progress is `GET /api/v1/operations/{id}` (or `/api/v1/user/operations/{id}`), and the
tenant's `operation` field shows it while it runs.
"""

# No `from __future__ import annotations`: the handlers are built in a factory, and FastAPI
# must see their annotations (the caller dependency differs per router) as objects.

from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Response

from controlplane.auth.deps import UserActorDep, UserDep
from controlplane.deps import Actor, AdminDep, AuditDep, DbDep, ProxmoxDep, SettingsDep
from controlplane.operations import drains, moveplan, service, usecases
from controlplane.operations.schemas import (
    BackupDetail,
    BackupPublic,
    BackupSchedule,
    BackupSchedulePublic,
    Confirmation,
    DrainPublic,
    DrainRequest,
    MoveRequest,
    OperationPublic,
    ResizeRequest,
    SnapshotCreate,
    SnapshotName,
    SnapshotPublic,
    UserOperationPublic,
)
from controlplane.operations.view import user_operation
from controlplane.web.errors import error_responses


@dataclass(frozen=True)
class Caller:
    """Who asks: an operator (`owner_user_id` None) or a tenant's owner."""

    actor: Actor
    owner_user_id: UUID | None


async def _admin(actor: AdminDep) -> Caller:
    return Caller(actor=actor, owner_user_id=None)


async def _owner(user: UserDep, actor: UserActorDep) -> Caller:
    return Caller(actor=actor, owner_user_id=user["id"])


SnapshotNamePath = Annotated[SnapshotName, Path(description="The snapshot's name")]


def _build(prefix: str, ops_prefix: str, caller_dep: Any, *, users: bool) -> APIRouter:
    router = APIRouter(tags=["user lifecycle" if users else "lifecycle"])
    CallerDep = Annotated[Caller, Depends(caller_dep)]
    op_model: Any = UserOperationPublic if users else OperationPublic
    backup_model: Any = BackupPublic if users else BackupDetail
    # Users also meet the tier's caps (402).
    changes = (400, 401, 402, 404, 409, 422) if users else (400, 401, 403, 404, 409, 422)

    def render(op: dict[str, Any], response: Response) -> dict[str, Any]:
        response.headers["Location"] = f"{ops_prefix}/{op['id']}"
        return user_operation(op) if users else op

    @router.get(
        f"{ops_prefix}/{{operation_id}}",
        response_model=op_model,
        responses=error_responses(401, 403, 404, 422),
        summary="An operation's progress",
    )
    async def get_operation(operation_id: UUID, caller: CallerDep, db: DbDep) -> dict[str, Any]:
        op = await service.get_operation(db, operation_id, owner_user_id=caller.owner_user_id)
        return user_operation(op) if users else op

    @router.get(
        f"{prefix}/{{tenant_id}}/operations",
        response_model=list[op_model],
        responses=error_responses(401, 403, 404, 422),
        summary="The tenant's latest operations, newest first",
    )
    async def list_operations(tenant_id: UUID, caller: CallerDep, db: DbDep) -> list[Any]:
        await service.tenant_for_operation(db, tenant_id, owner_user_id=caller.owner_user_id)
        rows = await service.operations_of(db, tenant_id)
        return [user_operation(r) for r in rows] if users else rows

    # -- snapshots ------------------------------------------------------------------------

    @router.get(
        f"{prefix}/{{tenant_id}}/snapshots",
        response_model=list[SnapshotPublic],
        responses=error_responses(401, 403, 404, 422),
    )
    async def list_snapshots(tenant_id: UUID, caller: CallerDep, db: DbDep) -> list[Any]:
        await service.tenant_for_operation(db, tenant_id, owner_user_id=caller.owner_user_id)
        return await service.snapshots_of(db, tenant_id)

    @router.post(
        f"{prefix}/{{tenant_id}}/snapshots",
        status_code=202,
        response_model=op_model,
        responses=error_responses(*changes),
        summary="Take a snapshot",
    )
    async def create_snapshot(
        tenant_id: UUID,
        body: SnapshotCreate,
        caller: CallerDep,
        db: DbDep,
        settings: SettingsDep,
        audit: AuditDep,
        response: Response,
    ) -> dict[str, Any]:
        op = await usecases.create_snapshot(
            db,
            settings,
            audit.context(caller.actor),
            tenant_id,
            body,
            owner_user_id=caller.owner_user_id,
        )
        return render(op, response)

    @router.delete(
        f"{prefix}/{{tenant_id}}/snapshots/{{name}}",
        status_code=202,
        response_model=op_model,
        responses=error_responses(*changes),
        summary="Delete a snapshot",
    )
    async def delete_snapshot(
        tenant_id: UUID,
        name: SnapshotNamePath,
        caller: CallerDep,
        db: DbDep,
        settings: SettingsDep,
        audit: AuditDep,
        response: Response,
    ) -> dict[str, Any]:
        op = await usecases.delete_snapshot(
            db,
            settings,
            audit.context(caller.actor),
            tenant_id,
            name,
            owner_user_id=caller.owner_user_id,
        )
        return render(op, response)

    @router.post(
        f"{prefix}/{{tenant_id}}/snapshots/{{name}}/rollback",
        status_code=202,
        response_model=op_model,
        responses=error_responses(*changes),
        summary="Roll the container back to a snapshot",
    )
    async def rollback_snapshot(
        tenant_id: UUID,
        name: SnapshotNamePath,
        caller: CallerDep,
        db: DbDep,
        settings: SettingsDep,
        audit: AuditDep,
        response: Response,
    ) -> dict[str, Any]:
        """The container is stopped, rolled back, and started again if the tenant is
        active. Snapshots taken after this one are kept."""
        op = await usecases.rollback_snapshot(
            db,
            settings,
            audit.context(caller.actor),
            tenant_id,
            name,
            owner_user_id=caller.owner_user_id,
        )
        return render(op, response)

    # -- backups --------------------------------------------------------------------------

    @router.get(
        f"{prefix}/{{tenant_id}}/backups",
        response_model=list[backup_model],
        responses=error_responses(401, 403, 404, 422),
    )
    async def list_backups(tenant_id: UUID, caller: CallerDep, db: DbDep) -> list[Any]:
        await service.tenant_for_operation(db, tenant_id, owner_user_id=caller.owner_user_id)
        return await service.backups_of(db, tenant_id)

    @router.post(
        f"{prefix}/{{tenant_id}}/backups",
        status_code=202,
        response_model=op_model,
        responses=error_responses(*changes),
        summary="Back the container up (vzdump, snapshot mode, zstd)",
    )
    async def create_backup(
        tenant_id: UUID,
        caller: CallerDep,
        db: DbDep,
        settings: SettingsDep,
        audit: AuditDep,
        response: Response,
    ) -> dict[str, Any]:
        op = await usecases.create_backup(
            db, settings, audit.context(caller.actor), tenant_id, owner_user_id=caller.owner_user_id
        )
        return render(op, response)

    @router.delete(
        f"{prefix}/{{tenant_id}}/backups/{{backup_id}}",
        status_code=202,
        response_model=op_model,
        responses=error_responses(*changes),
        summary="Delete a backup",
    )
    async def delete_backup(
        tenant_id: UUID,
        backup_id: UUID,
        caller: CallerDep,
        db: DbDep,
        settings: SettingsDep,
        audit: AuditDep,
        response: Response,
    ) -> dict[str, Any]:
        op = await usecases.delete_backup(
            db,
            settings,
            audit.context(caller.actor),
            tenant_id,
            backup_id,
            owner_user_id=caller.owner_user_id,
        )
        return render(op, response)

    @router.post(
        f"{prefix}/{{tenant_id}}/backups/{{backup_id}}/restore",
        status_code=202,
        response_model=op_model,
        responses=error_responses(*changes),
        summary="Restore a backup over the tenant's container",
    )
    async def restore_backup(
        tenant_id: UUID,
        backup_id: UUID,
        body: Confirmation,
        caller: CallerDep,
        db: DbDep,
        settings: SettingsDep,
        audit: AuditDep,
        response: Response,
    ) -> dict[str, Any]:
        """Keeps the VMID, subdomain, route, WireGuard peer and owner; replaces the disk
        and drops the container's snapshots. `confirm` repeats the tenant's subdomain."""
        op = await usecases.restore_backup(
            db,
            settings,
            audit.context(caller.actor),
            tenant_id,
            backup_id,
            body,
            owner_user_id=caller.owner_user_id,
        )
        return render(op, response)

    @router.get(
        f"{prefix}/{{tenant_id}}/backup-schedule",
        response_model=BackupSchedulePublic | None,
        responses=error_responses(401, 403, 404, 422),
        summary="The tenant's backup schedule (null: none)",
    )
    async def get_schedule(tenant_id: UUID, caller: CallerDep, db: DbDep) -> Any:
        row = await usecases.get_schedule(db, tenant_id, owner_user_id=caller.owner_user_id)
        return _schedule(row)

    @router.put(
        f"{prefix}/{{tenant_id}}/backup-schedule",
        response_model=BackupSchedulePublic,
        responses=error_responses(*changes),
        summary="Set the tenant's backup schedule",
    )
    async def put_schedule(
        tenant_id: UUID,
        body: BackupSchedule,
        caller: CallerDep,
        db: DbDep,
        settings: SettingsDep,
        audit: AuditDep,
    ) -> Any:
        """Daily or weekly at a time (UTC). Scheduled backups are pruned by `keep_last`,
        `keep_daily` and `keep_weekly` (Proxmox's rules); a run missed while the control
        plane was down runs once when it is back."""
        row = await usecases.set_schedule(
            db,
            settings,
            audit.context(caller.actor),
            tenant_id,
            body,
            owner_user_id=caller.owner_user_id,
        )
        return _schedule(row)

    @router.delete(
        f"{prefix}/{{tenant_id}}/backup-schedule",
        status_code=204,
        responses=error_responses(401, 403, 404, 422),
        summary="Stop scheduled backups (the backups stay)",
    )
    async def delete_schedule(
        tenant_id: UUID, caller: CallerDep, db: DbDep, audit: AuditDep
    ) -> Response:
        await usecases.delete_schedule(
            db, audit.context(caller.actor), tenant_id, owner_user_id=caller.owner_user_id
        )
        return Response(status_code=204)

    # -- rebuild, resize, restart ---------------------------------------------------------

    @router.post(
        f"{prefix}/{{tenant_id}}/rebuild",
        status_code=202,
        response_model=op_model,
        responses=error_responses(*changes),
        summary="Re-create the container from the project's template",
    )
    async def rebuild(
        tenant_id: UUID,
        body: Confirmation,
        caller: CallerDep,
        db: DbDep,
        settings: SettingsDep,
        audit: AuditDep,
        response: Response,
    ) -> dict[str, Any]:
        """Same VMID, subdomain, route, peer and owner; the bootstrap commands run again;
        the old container and its snapshots are destroyed. `confirm` repeats the subdomain."""
        op = await usecases.rebuild(
            db,
            settings,
            audit.context(caller.actor),
            tenant_id,
            body,
            owner_user_id=caller.owner_user_id,
        )
        return render(op, response)

    @router.post(
        f"{prefix}/{{tenant_id}}/resize",
        status_code=202,
        response_model=op_model,
        responses=error_responses(*changes),
        summary="Change RAM and cores, or grow the disk",
    )
    async def resize(
        tenant_id: UUID,
        body: ResizeRequest,
        caller: CallerDep,
        db: DbDep,
        settings: SettingsDep,
        audit: AuditDep,
        response: Response,
    ) -> dict[str, Any]:
        """RAM is re-reserved on the node at once (409 when it has no room); the disk only
        grows."""
        op = await usecases.resize(
            db,
            settings,
            audit.context(caller.actor),
            tenant_id,
            body,
            owner_user_id=caller.owner_user_id,
        )
        return render(op, response)

    @router.post(
        f"{prefix}/{{tenant_id}}/restart",
        status_code=202,
        response_model=op_model,
        responses=error_responses(*changes),
        summary="Reboot the container",
    )
    async def restart(
        tenant_id: UUID,
        caller: CallerDep,
        db: DbDep,
        settings: SettingsDep,
        audit: AuditDep,
        response: Response,
    ) -> dict[str, Any]:
        op = await usecases.restart(
            db, settings, audit.context(caller.actor), tenant_id, owner_user_id=caller.owner_user_id
        )
        return render(op, response)

    return router


def _schedule(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {**row, "at": row["at_time"]}


def _fleet_router() -> APIRouter:
    """Operator-only: moving tenants and draining nodes."""
    router = APIRouter(tags=["fleet"])

    @router.post(
        "/api/v1/tenants/{tenant_id}/move",
        status_code=202,
        response_model=OperationPublic,
        responses=error_responses(400, 401, 403, 404, 409, 422),
        summary="Move a tenant to another node (restart migration, or backup and restore)",
    )
    async def move_tenant(
        tenant_id: UUID,
        body: MoveRequest,
        actor: AdminDep,
        db: DbDep,
        proxmox: ProxmoxDep,
        settings: SettingsDep,
        audit: AuditDep,
        response: Response,
    ) -> dict[str, Any]:
        """The tenant's RAM is reserved on the target first and released on the source once
        the container is there; the route flips once its health check answers on the
        target; the operation keeps its `method` and the tenant's `downtime_s`. 409 when
        the disk cannot be migrated and no storage for backups is shared by both nodes."""
        plan = await moveplan.plan_request(db, proxmox, tenant_id, body.node_id, body.method)
        op = await usecases.move(
            db,
            settings,
            audit.context(actor),
            tenant_id,
            body.node_id,
            method=body.method,
            plan=plan,
        )
        response.headers["Location"] = f"/api/v1/operations/{op['id']}"
        return op

    @router.post(
        "/api/v1/tenants/{tenant_id}/repair",
        status_code=202,
        response_model=OperationPublic,
        responses=error_responses(401, 403, 404, 409, 422),
        summary="Start, or recreate, a container that stopped or vanished behind our back",
    )
    async def repair_tenant(
        tenant_id: UUID,
        actor: AdminDep,
        db: DbDep,
        settings: SettingsDep,
        audit: AuditDep,
        response: Response,
    ) -> dict[str, Any]:
        """A stopped container is started; a missing one is restored from the tenant's
        latest backup on its node, else cloned from the project's template (bootstrap
        commands run again); the VMID, subdomain, route and owner stay."""
        op = await usecases.repair(db, settings, audit.context(actor), tenant_id)
        response.headers["Location"] = f"/api/v1/operations/{op['id']}"
        return op

    @router.post(
        "/api/v1/nodes/{node_id}/drain",
        status_code=202,
        response_model=DrainPublic,
        responses=error_responses(400, 401, 403, 404, 409, 422),
        summary="Move every tenant off a node, a few at a time",
    )
    async def drain_node(
        node_id: UUID, body: DrainRequest, actor: AdminDep, db: DbDep, audit: AuditDep
    ) -> dict[str, Any]:
        return await drains.start_drain(
            db, audit.context(actor), node_id, max_parallel=body.max_parallel
        )

    @router.get(
        "/api/v1/nodes/{node_id}/drain",
        response_model=DrainPublic,
        responses=error_responses(401, 403, 404, 422),
        summary="The node's latest drain and its progress",
    )
    async def get_drain(node_id: UUID, _: AdminDep, db: DbDep) -> dict[str, Any]:
        return await drains.drain_status(db, node_id)

    @router.post(
        "/api/v1/nodes/{node_id}/drain/cancel",
        response_model=DrainPublic,
        responses=error_responses(401, 403, 404, 409, 422),
        summary="Stop starting moves (those in flight finish)",
    )
    async def cancel_drain(
        node_id: UUID, actor: AdminDep, db: DbDep, audit: AuditDep
    ) -> dict[str, Any]:
        return await drains.cancel_drain(db, audit.context(actor), node_id)

    return router


fleet_router = _fleet_router()
admin_router = _build("/api/v1/tenants", "/api/v1/operations", _admin, users=False)
user_router = _build("/api/v1/user/tenants", "/api/v1/user/operations", _owner, users=True)
