"""One operation per non-final status: run its steps, then the final compare-and-swap."""

from __future__ import annotations

import logging
from typing import Any

from controlplane.provisioner.context import LostLease, Q, StepContext
from controlplane.provisioner.leftovers import release_leftovers
from controlplane.provisioner.steps import (
    PROVISION_STEPS,
    destroy_container,
    step_address,
    step_route,
    step_start,
    stop_container,
)

log = logging.getLogger(__name__)


async def _finish(ctx: StepContext, tenant: dict[str, Any], to: str) -> None:
    ok = await ctx.db.fetch_one(
        Q["finish"], {"id": tenant["id"], "from": tenant["status"], "to": to, "owner": ctx.owner}
    )
    if ok is None:
        raise LostLease(f"tenant {tenant['id']} changed before it could become {to}")
    log.info("tenant %s", to, extra={"tenant": str(tenant["id"]), "status": to})


async def provision(ctx: StepContext, tenant: dict[str, Any]) -> None:
    node = await ctx.node(tenant["node_id"])
    names = [name for name, _ in PROVISION_STEPS]
    # Resume where the last attempt was; every step is safe to repeat anyway.
    start = names.index(tenant["step"]) if tenant.get("step") in names else 0
    for name, step in PROVISION_STEPS[start:]:
        await ctx.set_step(tenant, name)
        await step(ctx, tenant, node)
    await _finish(ctx, tenant, "active")


async def suspend(ctx: StepContext, tenant: dict[str, Any]) -> None:
    node = await ctx.node(tenant["node_id"])
    await ctx.set_step(tenant, "stop")
    await stop_container(ctx, node, tenant["vmid"])
    await ctx.set_step(tenant, "route")
    if ctx.route_hook is not None:
        await ctx.route_hook.set_suspended(tenant["id"], tenant["subdomain"])
    await _finish(ctx, tenant, "suspended")


async def resume(ctx: StepContext, tenant: dict[str, Any]) -> None:
    node = await ctx.node(tenant["node_id"])
    for name, step in (("start", step_start), ("address", step_address), ("route", step_route)):
        await ctx.set_step(tenant, name)
        await step(ctx, tenant, node)
    await _finish(ctx, tenant, "active")


async def deprovision(ctx: StepContext, tenant: dict[str, Any]) -> None:
    await ctx.set_step(tenant, "delete")
    try:
        if tenant.get("node_id") is not None:
            node = await ctx.node(tenant["node_id"])
            await destroy_container(ctx, tenant, node)
        # A move that was cancelled (or failed) may have left the container on its
        # target: the tenant's VMID is looked for there too (only ours is destroyed).
        for target in await ctx.db.fetch_all(Q["move_targets"], {"id": tenant["id"]}):
            if target["node_id"] != tenant.get("node_id"):
                await destroy_container(ctx, tenant, await ctx.node(target["node_id"]))
    except Exception as exc:
        if not tenant.get("force_delete"):
            raise
        log.warning(
            "force delete: giving up on the container",
            extra={"tenant": str(tenant["id"]), "error": str(exc)},
        )
    await ctx.set_step(tenant, "backups")
    try:
        await release_leftovers(ctx, tenant)
    except Exception:
        if not tenant.get("force_delete"):
            raise
        # Their rows stay, due at once: the backup scheduler's sweep keeps trying.
        await ctx.db.execute(Q["expire_backups"], {"id": tenant["id"], "days": 0})
        log.warning("force delete: backups left to the sweep", extra={"tenant": str(tenant["id"])})
    await ctx.set_step(tenant, "route")
    if ctx.route_hook is not None:
        try:
            await ctx.route_hook.remove(tenant["id"])
        except Exception:
            if not tenant.get("force_delete"):
                raise
    row = await ctx.db.fetch_one(Q["finish_deleted"], {"id": tenant["id"], "owner": ctx.owner})
    if row is None or row["done"] == 0:
        raise LostLease(f"tenant {tenant['id']} changed before it could be deleted")
    log.info(
        "tenant deleted", extra={"tenant": str(tenant["id"]), "released_ram": bool(row["released"])}
    )


async def apply_config(ctx: StepContext, tenant: dict[str, Any]) -> None:
    """Apply a changed size to the container; the flag clears only if nothing changed since."""
    if tenant.get("node_id") is not None and tenant.get("vmid") is not None:
        node = await ctx.node(tenant["node_id"])
        await ctx.client(node).set_config(
            node["pve_node"], tenant["vmid"], memory=tenant["ram_mb"], cores=tenant["cores"]
        )
    await ctx.db.execute(
        Q["config_applied"],
        {"id": tenant["id"], "ram": tenant["ram_mb"], "cores": tenant["cores"], "owner": ctx.owner},
    )


OPERATIONS = {
    "provisioning": provision,
    "suspending": suspend,
    "resuming": resume,
    "deleting": deprovision,
}
