"""The tenant use cases the admin API, the user API and the dashboard share.

Each function is one use case: it looks up what the change needs, makes it through
`tenants.service` (one compare-and-swap or one transaction), and writes the audit entry for
it. Routes parse, call one of these, and render; they no longer write entries themselves.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from controlplane.audit.context import AuditContext
from controlplane.billing.limits import create_tenant_within_tier
from controlplane.config import Settings
from controlplane.db import Executor
from controlplane.projects.service import project_for_tenant, self_service_project
from controlplane.tenants import service
from controlplane.tenants.hostnames import TenantHosts, require_tenant_label
from controlplane.tenants.schemas import TenantCreate, TenantUpdate
from controlplane.users.schemas import UserTenantCreate

Transition = Literal["suspend", "resume", "retry", "delete", "force_delete"]


async def create_tenant(
    db: Executor,
    settings: Settings,
    audit: AuditContext,
    spec: TenantCreate | UserTenantCreate,
    *,
    owner_user_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """Start a tenant. An operator's `TenantCreate` names the project by id (or the default)
    and may pick the node and the owner; a user's `UserTenantCreate` (with `owner_user_id`,
    the caller) names a project open to users by slug and is held to the user's billing
    tier (402 beyond it)."""
    hosts = TenantHosts.from_settings(settings)
    require_tenant_label(hosts, spec.subdomain)  # 422 on one of the operator's names
    if isinstance(spec, UserTenantCreate):
        assert owner_user_id is not None, "a user's tenant needs its owner"
        project = await self_service_project(db, spec.project)
        row = await create_tenant_within_tier(
            db,
            settings,
            project=project,
            subdomain=spec.subdomain,
            name=spec.name,
            owner_user_id=owner_user_id,
            audit_row=audit.row("tenant.create", "tenant", None, spec.model_dump(mode="json")),
        )
    else:
        project = await project_for_tenant(db, spec.project_id)
        row = await service.create_tenant(
            db,
            project=project,
            subdomain=spec.subdomain,
            name=spec.name,
            owner_user_id=spec.owner_user_id,
            node_id=spec.node_id,
            hosts=hosts,
            audit_row=audit.row("tenant.create", "tenant", None, spec.model_dump(mode="json")),
        )
    # The entry (the spec, plus the node and VMID chosen) was written with the tenant.
    return row


async def request_transition(
    db: Executor,
    audit: AuditContext,
    tenant_id: uuid.UUID,
    transition: Transition,
    *,
    owner_user_id: uuid.UUID | None = None,
    record_status: bool | None = None,
) -> dict[str, Any]:
    """Ask for a transition; with `owner_user_id` only on that user's tenant (else 404).

    The entry is `tenant.<transition>` with the status reached; a delete's entry carries no
    details unless `record_status` (the dashboard's entries have always carried it)."""
    if record_status is None:
        record_status = transition not in ("delete", "force_delete")
    # The change and its entry commit together (a kill -9 cannot keep one without the other).
    async with db.transaction() as tx:
        if transition == "suspend":
            row = await service.request_suspend(tx, tenant_id, owner_user_id=owner_user_id)
        elif transition == "resume":
            row = await service.request_resume(tx, tenant_id, owner_user_id=owner_user_id)
        elif transition == "retry":
            row = await service.request_retry(tx, tenant_id, owner_user_id=owner_user_id)
        else:
            row = await service.request_delete(
                tx, tenant_id, owner_user_id=owner_user_id, force=transition == "force_delete"
            )
        details = {"status": row["status"]} if record_status else None
        await audit.write(tx, f"tenant.{transition}", "tenant", tenant_id, details)
    return row


async def update_tenant(
    db: Executor, audit: AuditContext, tenant_id: uuid.UUID, spec: TenantUpdate
) -> dict[str, Any]:
    """Rename or resize; the entry lists what was asked to change."""
    async with db.transaction() as tx:
        row = await service.update_tenant(
            tx, tenant_id, name=spec.name, ram_mb=spec.ram_mb, cores=spec.cores
        )
        await audit.write(
            tx, "tenant.update", "tenant", tenant_id, spec.model_dump(exclude_unset=True)
        )
    return row
