"""The status poller: what Proxmox says about each active tenant, and whether its app answers.

Proxmox calls grow with nodes, not tenants: each period, one `GET /nodes/{node}/lxc` per
node gives every container's status, memory, CPU and uptime. A tenant gets a call of its
own (`status/current`, which is immediate where the list lags up to 10 s behind pvestatd)
only when the list disagrees with what was last observed: its container is not listed, or
its status changed (a container already found missing is not asked again while it stays
unlisted). A tenant never observed that the list shows running is taken at its
word (that is how the provisioner left it).

A container that stopped or vanished behind our back is flagged in `health`
(`container_stopped`, `container_missing`) and its observed state is kept in `observed`,
both visible in the API. Nothing is changed on Proxmox: an operator decides.

The app check GETs the tenant's pinned address only, and only when it passes the address
rules (`addresses.AddressPolicy`), else `address_refused`; a tenant whose container reported
another address keeps `address_changed` (see `steps.step_address`). App checks are HTTP to
the tenant, one per tenant per period, never through Proxmox.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Any

import httpx
from psycopg.types.json import Jsonb

from controlplane.periodic import Periodic
from controlplane.provisioner.context import Q, StepContext
from controlplane.proxmox import ProxmoxNotFoundError

log = logging.getLogger(__name__)
CONCURRENCY = 20  # node lists, and per-tenant checks, in flight per process
CLAIM_LIMIT = 20_000  # tenants claimed per round (whole nodes at a time)


def needs_detail(tenant: dict[str, Any], listed: dict[str, Any] | None) -> bool:
    """Whether the node's list is not enough for this tenant: a call of its own confirms."""
    if listed is None:  # not listed: gone, or elsewhere; status/current says which
        return tenant.get("health") != "container_missing"  # unless it said so already
    was = (tenant.get("observed") or {}).get("status")
    now = listed.get("status")
    if now == was:
        return False
    return not (was is None and now == "running")


async def _health(
    ctx: StepContext, http: httpx.AsyncClient, tenant: dict[str, Any], status: dict[str, Any]
) -> str:
    refused = tenant.get("ip_address") and ctx.addresses.refusal(tenant["ip_address"])
    if status.get("status") != "running":
        health = "container_stopped"
    elif refused:  # never GET an address outside the rules (a pin from before them)
        health = "address_refused"
    elif tenant.get("health_path") and tenant.get("ip_address"):
        url = f"http://{tenant['ip_address']}:{tenant['app_port']}{tenant['health_path']}"
        try:
            response = await http.get(url)
            health = "ok" if response.status_code < 400 else f"app_http_{response.status_code}"
        except httpx.HTTPError as exc:
            health = f"app_unreachable: {type(exc).__name__}"
    else:
        health = "ok"
    if health == "ok" and tenant.get("reported_ip_address"):
        health = "address_changed"  # the container claims another address: not followed
    return health


async def check_tenant(
    ctx: StepContext,
    http: httpx.AsyncClient,
    tenant: dict[str, Any],
    node: dict[str, Any],
    listed: dict[str, Any] | None,
) -> tuple[dict[str, Any], str]:
    """One tenant's observed state and health, from the node's list entry when it is
    enough (`needs_detail`), else from a `status/current` call."""
    observed: dict[str, Any] = {}
    try:
        status = listed
        if needs_detail(tenant, listed):
            status = await ctx.client(node).container_status(node["pve_node"], tenant["vmid"])
        if status is None:  # still not listed, and already known to be missing
            raise ProxmoxNotFoundError("not listed on its node", status=404)
        observed = {
            "status": status.get("status"),
            "mem_mb": int(status.get("mem") or 0) // (1024 * 1024),
            "cpu": status.get("cpu"),
            "uptime_s": status.get("uptime"),
        }
        health = await _health(ctx, http, tenant, status)
    except ProxmoxNotFoundError:
        health = "container_missing"
    except Exception as exc:
        health = f"unknown: {type(exc).__name__}: {exc}"[:200]
    if health != "ok":
        log.warning("tenant unhealthy", extra={"tenant": str(tenant["id"]), "health": health})
    return observed, health


async def _record(
    ctx: StepContext, tenants: list[dict[str, Any]], seen: list[tuple[dict[str, Any], str]]
) -> None:
    await ctx.db.execute(
        Q["status_record"],
        {
            "ids": [t["id"] for t in tenants],
            "observed": [Jsonb(observed) for observed, _ in seen],
            "health": [health for _, health in seen],
        },
    )


async def poll_once(
    ctx: StepContext, http: httpx.AsyncClient, period: float, limit: int = CLAIM_LIMIT
) -> int:
    """One round: claim the tenants of due nodes, list each node once, check each tenant,
    record each node's tenants in one statement. Returns how many tenants were checked."""
    tenants = await ctx.db.fetch_all(Q["status_claim"], {"period": period, "limit": limit})
    by_node: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for tenant in tenants:
        by_node[tenant["node_id"]].append(tenant)
    sem = asyncio.Semaphore(CONCURRENCY)

    async def one(tenant: dict[str, Any], node: dict[str, Any], listed: Any) -> Any:
        if not needs_detail(tenant, listed) and not tenant.get("health_path"):
            return await check_tenant(ctx, http, tenant, node, listed)  # no I/O to bound
        async with sem:
            return await check_tenant(ctx, http, tenant, node, listed)

    async def node_round(node_id: Any, group: list[dict[str, Any]]) -> None:
        try:
            node = await ctx.node(node_id)
            async with sem:
                entries = await ctx.client(node).list_containers(node["pve_node"])
        except Exception as exc:  # the node is down: say so for each tenant, try next period
            health = f"unknown: {type(exc).__name__}: {exc}"[:200]
            log.warning("node list failed", extra={"node": str(node_id), "error": health})
            await _record(ctx, group, [({}, health)] * len(group))
            return
        listing = {entry.get("vmid"): entry for entry in entries}
        seen = await asyncio.gather(*(one(t, node, listing.get(t["vmid"])) for t in group))
        await _record(ctx, group, list(seen))

    await asyncio.gather(*(node_round(n, group) for n, group in by_node.items()))
    return len(tenants)


async def start_status_poller(ctx: StepContext, period: float):  # type: ignore[no-untyped-def]
    http = httpx.AsyncClient(timeout=5.0, follow_redirects=False, trust_env=False)
    poller = Periodic("status-poller", lambda: poll_once(ctx, http, period), max(0.1, period / 5))
    poller.start()

    async def stop() -> None:
        await poller.stop()
        await http.aclose()

    return stop
