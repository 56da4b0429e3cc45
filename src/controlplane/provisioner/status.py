"""The status poller: what Proxmox says about each active tenant, and whether its app answers.

A container that stopped or vanished behind our back is flagged in `health`
(`container_stopped`, `container_missing`) and its observed state is kept in `observed`,
both visible in the API. Nothing is changed on Proxmox: an operator decides.

The app check GETs the tenant's pinned address only, and only when it passes the address
rules (`addresses.AddressPolicy`), else `address_refused`; a tenant whose container reported
another address keeps `address_changed` (see `steps.step_address`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
from psycopg.types.json import Jsonb

from controlplane.periodic import Periodic
from controlplane.provisioner.context import Q, StepContext
from controlplane.proxmox import ProxmoxNotFoundError

log = logging.getLogger(__name__)


async def check_tenant(ctx: StepContext, http: httpx.AsyncClient, tenant: dict[str, Any]) -> None:
    observed: dict[str, Any] = {}
    try:
        node = await ctx.node(tenant["node_id"])
        status = await ctx.client(node).container_status(node["pve_node"], tenant["vmid"])
        observed = {
            "status": status.get("status"),
            "mem_mb": int(status.get("mem") or 0) // (1024 * 1024),
            "cpu": status.get("cpu"),
            "uptime_s": status.get("uptime"),
        }
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
    except ProxmoxNotFoundError:
        health = "container_missing"
    except Exception as exc:
        health = f"unknown: {type(exc).__name__}: {exc}"[:200]
    if health not in ("ok",):
        log.warning("tenant unhealthy", extra={"tenant": str(tenant["id"]), "health": health})
    await ctx.db.execute(
        Q["status_record"], {"id": tenant["id"], "observed": Jsonb(observed), "health": health}
    )


async def poll_once(
    ctx: StepContext, http: httpx.AsyncClient, period: float, limit: int = 200
) -> int:
    tenants = await ctx.db.fetch_all(Q["status_claim"], {"period": period, "limit": limit})
    sem = asyncio.Semaphore(20)

    async def one(tenant: dict[str, Any]) -> None:
        async with sem:
            await check_tenant(ctx, http, tenant)

    await asyncio.gather(*(one(t) for t in tenants))
    return len(tenants)


async def start_status_poller(ctx: StepContext, period: float):  # type: ignore[no-untyped-def]
    http = httpx.AsyncClient(timeout=5.0, follow_redirects=False, trust_env=False)
    poller = Periodic("status-poller", lambda: poll_once(ctx, http, period), max(0.1, period / 5))
    poller.start()

    async def stop() -> None:
        await poller.stop()
        await http.aclose()

    return stop
