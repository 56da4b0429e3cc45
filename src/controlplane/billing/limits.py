"""Tier limits, enforced where a user creates a tenant.

`create_tenant_within_tier` is what `/api/v1/user/tenants` calls instead of
`tenants.service.create_tenant`: in one transaction it locks the user's billing row, counts
the user's tenants and RAM, checks them against the tier, and inserts the tenant. A second
create by the same user waits for the lock and then counts the first one, so two concurrent
creates can never both pass. Over the limit is a 402 that names the limit. The tenant
service runs on our transaction (it takes any `Executor`); its own `transaction()` becomes a
savepoint of ours, so the lock is held until the tenant is committed.
"""

from __future__ import annotations

import uuid
from typing import Any

from controlplane.billing.standing import Standing, standing_of
from controlplane.config import Settings
from controlplane.db import Executor, load_queries
from controlplane.errors import PaymentRequired
from controlplane.tenants import service as tenants
from controlplane.tenants.hostnames import TenantHosts

_Q = load_queries("controlplane.billing")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def check_limits(standing: Standing, usage: dict[str, Any], ram_mb: int) -> None:
    """Raise PaymentRequired when one more tenant of `ram_mb` would exceed the tier."""
    if standing.hold:
        raise PaymentRequired(
            f"{standing.hold_reason}: your tenants are suspended and no new ones can be "
            "created until a payment comes in"
        )
    tier = standing.tier
    count, ram = int(usage["tenants"]), int(usage["ram_mb"])
    if count + 1 > tier.max_tenants:
        raise PaymentRequired(
            f"the {tier.name} tier allows {_plural(tier.max_tenants, 'tenant')}; you have {count}"
        )
    if ram + ram_mb > tier.max_ram_mb:
        raise PaymentRequired(
            f"the {tier.name} tier allows {tier.max_ram_mb} MB of RAM in total; your tenants "
            f"use {ram} MB and this one needs {ram_mb} MB"
        )


async def usage_of(db: Executor, user_id: uuid.UUID) -> dict[str, Any]:
    row = await db.fetch_one(_Q["usage"], {"user_id": user_id})
    assert row is not None
    return {"tenants": int(row["tenants"]), "ram_mb": int(row["ram_mb"])}


async def create_tenant_within_tier(
    db: Executor,
    settings: Settings,
    *,
    project: dict[str, Any],
    subdomain: str,
    name: str | None = None,
    owner_user_id: uuid.UUID,
    audit_row: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`tenants.service.create_tenant` for a user, refused (402) beyond their tier."""
    async with db.transaction() as tx:
        await tx.fetch_one(_Q["account_lock"], {"user_id": owner_user_id})
        # Read after the lock: READ COMMITTED gives this statement a fresh snapshot, which
        # includes a tenant that a concurrent create committed while we waited.
        usage = await usage_of(tx, owner_user_id)
        check_limits(await standing_of(tx, settings, owner_user_id), usage, project["ram_mb"])
        return await tenants.create_tenant(
            tx,
            project=project,
            subdomain=subdomain,
            name=name,
            owner_user_id=owner_user_id,
            hosts=TenantHosts.from_settings(settings),
            hold_s=settings.subdomain_hold_days * 86_400,
            audit_row=audit_row,
        )
