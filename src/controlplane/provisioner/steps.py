"""The idempotent steps. Each looks at what Proxmox has first and is safe to repeat after a
crash at any line: the VMID is stored before the clone, the clone is recognised by the
tenant id in its description, power actions tolerate "already running"/"not running",
a container that is gone counts as deleted, and routes are upserted by their own id.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime
from typing import Any

from psycopg.types.json import Jsonb

from controlplane.db import ConstraintViolation
from controlplane.provisioner.addresses import (
    host_of,
    reported_addresses,
    resolve,
    static_address,
)
from controlplane.provisioner.context import LostLease, PermanentStep, Q, StepContext, TransientStep
from controlplane.proxmox import (
    ProxmoxAlreadyExistsError,
    ProxmoxAlreadyRunningError,
    ProxmoxClient,
    ProxmoxLockedError,
    ProxmoxNotFoundError,
    ProxmoxNotRunningError,
)
from controlplane.tenants.service import next_free_vmid

log = logging.getLogger(__name__)
TAG = "controlplane"
# A warm pool's spare container carries this tag instead (never TAG: no tenant list or orphan
# scan counts it), and `spare_marker` in its description until a tenant takes it.
SPARE_TAG = "cp-spare"
NET0 = "name=eth0,bridge=vmbr0,ip=dhcp"


_SIZE = re.compile(r"(?:^|,)size=(\d+(?:\.\d+)?)([KMGT]?)")
_UNIT_GB = {"": 1 / 1024**3, "K": 1 / 1024**2, "M": 1 / 1024, "G": 1, "T": 1024}


def disk_gb_of(config: dict[str, Any] | None) -> int | None:
    """The root disk's size in whole GB from `rootfs` (`local-lvm:vm-101-disk-0,size=8G`)."""
    match = _SIZE.search(str((config or {}).get("rootfs", "")))
    if match is None:
        return None
    return max(1, round(float(match.group(1)) * _UNIT_GB[match.group(2)]))


def marker(tenant_id: Any) -> str:
    return f"controlplane tenant {tenant_id}"


def spare_marker(spare_id: Any) -> str:
    return f"controlplane spare {spare_id}"


def is_ours(config: dict[str, Any], tenant_id: Any, spare_id: Any = None) -> bool:
    """The container is the tenant's: its marker, or (a tenant made from a spare, before
    its configure step renamed it) the marker of the spare it took."""
    description = str(config.get("description") or "")
    if marker(tenant_id) in description:
        return True
    return spare_id is not None and spare_marker(spare_id) in description


async def find_container(client: ProxmoxClient, pve_node: str, vmid: int) -> dict[str, Any] | None:
    try:
        return await client.get_config(pve_node, vmid)
    except ProxmoxNotFoundError:
        return None


def address_of(interfaces: list[dict[str, Any]] | None) -> str | None:
    """The first address the container reports (its word, not ours: see `addresses`)."""
    found = reported_addresses(interfaces)
    return found[0] if found else None


# -- provisioning ------------------------------------------------------------------------


async def step_clone(ctx: StepContext, tenant: dict[str, Any], node: dict[str, Any]) -> None:
    client, pve = ctx.client(node), node["pve_node"]
    vmid = tenant["vmid"]
    existing = await find_container(client, pve, vmid)
    if existing is None:
        async with ctx.clone_lock(node["id"], tenant["template_vmid"]):
            try:
                upid = await clone_when_unlocked(
                    client,
                    pve,
                    template=tenant["template_vmid"],
                    vmid=vmid,
                    hostname=tenant["subdomain"],
                    description=marker(tenant["id"]) + "\n",
                )
            except ProxmoxAlreadyExistsError:
                # Someone got there while we queued for the lock: maybe an earlier attempt
                # of ours (a lost lease), maybe a stranger. Look before deciding.
                existing = await find_container(client, pve, vmid)
                if existing is None:  # taken on another node of the cluster
                    await _move_to_free_vmid(ctx, tenant, client, reason="taken in the cluster")
                    raise TransientStep(
                        "VMID taken elsewhere in the cluster; chose another", 0
                    ) from None
            else:
                await ctx.wait(node, "clone", upid)
                return
    if not is_ours(existing, tenant["id"], tenant.get("spare_id")):
        await _move_to_free_vmid(ctx, tenant, client, reason="holds a container that is not ours")
        raise TransientStep("VMID held by a foreign container; chose another", 0)
    if existing.get("lock") == "create":
        raise TransientStep("the clone of a previous attempt is still running", 1.0)


SOURCE_LOCK_WAIT = 30.0


async def clone_when_unlocked(
    client: ProxmoxClient, pve: str, *, template: int, vmid: int, hostname: str, description: str
) -> str:
    """Start the clone, waiting here while the template is locked.

    We hold the clone lock for this template, so a lock on it is someone else's (a backup,
    a lock left over by the previous clone): it clears by itself. Waiting in line is much
    cheaper than failing, backing off and competing for the template again.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SOURCE_LOCK_WAIT
    delay = 0.05
    while True:
        try:
            return await client.clone(
                pve, template, vmid, hostname=hostname, description=description
            )
        except ProxmoxLockedError:
            if loop.time() + delay > deadline:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 1.0)


async def _move_to_free_vmid(
    ctx: StepContext, tenant: dict[str, Any], client: ProxmoxClient, *, reason: str
) -> None:
    resources = await client.cluster_resources(type="vm")
    taken = sorted({int(r["vmid"]) for r in resources if "vmid" in r} | {tenant["vmid"]})
    node = await ctx.node(tenant["node_id"])
    try:
        # Under the placement lock, so no placement or refill picks the same VMID meanwhile.
        async with ctx.db.transaction() as tx:
            await tx.execute(Q["placement_lock"])
            vmid = await next_free_vmid(
                tx, start=node["vmid_range_start"], end=node["vmid_range_end"], avoid=taken
            )
            if vmid is None:
                raise PermanentStep(f"no free VMID left in node {node['name']}'s range")
            moved = await tx.fetch_one(
                Q["set_vmid"], {"id": tenant["id"], "vmid": vmid, "owner": ctx.owner}
            )
    except ConstraintViolation:  # a creator took the same VMID a moment ago: pick again
        raise TransientStep("VMID picked by another tenant meanwhile", 0) from None
    if moved is None:
        raise LostLease(f"tenant {tenant['id']} changed under us")
    log.warning(
        "VMID moved",
        extra={"tenant": str(tenant["id"]), "old": tenant["vmid"], "new": vmid, "reason": reason},
    )
    tenant["vmid"] = vmid


def net0_for(config: dict[str, Any] | None) -> str:
    """Our `net0`, keeping a static address the host side set (template or IPAM)."""
    options = dict(
        part.partition("=")[::2] for part in str((config or {}).get("net0", "")).split(",")
    )
    if static_address(config) is None:
        return NET0
    kept = ",".join(f"{key}={options[key]}" for key in ("ip", "gw") if options.get(key))
    return NET0.replace("ip=dhcp", kept)


async def step_configure(ctx: StepContext, tenant: dict[str, Any], node: dict[str, Any]) -> None:
    client = ctx.client(node)
    config = await find_container(client, node["pve_node"], tenant["vmid"])
    extra: dict[str, object] = {}
    spare_id = tenant.get("spare_id")
    if spare_id is not None and tenant.get("status") == "provisioning":
        # Made from a warm pool's spare: this step makes the spare the tenant's.
        if config is None:  # removed behind our back: clone one after all
            await ctx.set_step(tenant, "clone")
            raise TransientStep("the spare's container is gone; cloning instead", 0)
        if not is_ours(config, tenant["id"], spare_id):
            raise PermanentStep(f"VMID {tenant['vmid']} holds a container that is not this spare")
        extra["hostname"] = tenant["subdomain"]
    await client.set_config(
        node["pve_node"],
        tenant["vmid"],
        memory=tenant["ram_mb"],
        cores=tenant["cores"],
        net0=net0_for(config),
        tags=TAG,
        description=marker(tenant["id"]) + "\n",
        **extra,
    )
    # The root disk's size, for the lifecycle (resize grows it, tier caps count it).
    disk_gb = disk_gb_of(config)
    if disk_gb is not None:
        await ctx.db.execute(Q["set_disk"], {"id": tenant["id"], "disk_gb": disk_gb})


async def step_start(ctx: StepContext, tenant: dict[str, Any], node: dict[str, Any]) -> None:
    client = ctx.client(node)
    status = await client.container_status(node["pve_node"], tenant["vmid"])
    if status.get("status") == "running":
        return
    try:
        upid = await client.start(node["pve_node"], tenant["vmid"])
    except ProxmoxAlreadyRunningError:
        return
    await ctx.wait(node, "start", upid)


async def step_address(ctx: StepContext, tenant: dict[str, Any], node: dict[str, Any]) -> None:
    """Pin the tenant's address at first provisioning; afterwards only compare and flag.

    The host side's static `ip=` wins; otherwise the container's first report that passes
    the rules, read before the tenant has had any access to the container. Later reports
    (every resume reads them again) never move the pin: a different one is recorded in
    `reported_ip_address` and flagged `address_changed` for the operator.
    """
    client, pve = ctx.client(node), node["pve_node"]
    static = static_address(await find_container(client, pve, tenant["vmid"]))
    if tenant.get("ip_address"):
        reported = (
            [static] if static else reported_addresses(await client.interfaces(pve, tenant["vmid"]))
        )
        differs = reported[0] if reported and tenant["ip_address"] not in reported else None
        if differs:
            log.warning(
                "tenant reports an address other than its pinned one; not followed",
                extra={
                    "tenant": str(tenant["id"]),
                    "pinned": tenant["ip_address"],
                    "reported": differs,
                },
            )
        await ctx.db.execute(
            Q["set_reported_ip"], {"id": tenant["id"], "reported": differs, "owner": ctx.owner}
        )
        return
    candidates = (
        [static] if static else reported_addresses(await client.interfaces(pve, tenant["vmid"]))
    )
    if not candidates:
        raise TransientStep("the container has no address yet", 0.5)
    refusals = []
    for ip in candidates:
        reason = await _refusal(ctx, tenant, ip)
        if reason is None:
            try:
                row = await ctx.db.fetch_one(
                    Q["pin_ip"], {"id": tenant["id"], "ip": ip, "owner": ctx.owner}
                )
            except ConstraintViolation:  # pinned by another tenant a moment ago
                row = None
            if row is not None:
                tenant["ip_address"] = ip
                return
            reason = f"{ip} is another tenant's address"
        refusals.append(reason)
    raise PermanentStep(
        "no acceptable address for the container: " + "; ".join(refusals) + " (see TENANT_NETWORKS)"
    )


async def _refusal(ctx: StepContext, tenant: dict[str, Any], ip: str) -> str | None:
    """Why `ip` cannot be this tenant's address, or None: the static rules, then the nodes'
    and the control plane's own addresses (names resolved now) and the other tenants'."""
    reason = ctx.addresses.refusal(ip)
    if reason is not None:
        return reason
    own = await ctx.addresses.own_addresses()
    reason = ctx.addresses.refusal(ip, own=own)
    if reason is not None:
        return reason
    rows = await ctx.db.fetch_all(Q["node_hosts"])
    nodes = await resolve(h for row in rows for h in (host_of(row["api_url"]), row["ssh_host"]))
    if ip in {str(a) for a in nodes}:
        return f"{ip} is a registered node's address"
    holder = await ctx.db.fetch_one(Q["ip_holder"], {"ip": ip, "id": tenant["id"]})
    if holder is not None:
        return f"{ip} is another tenant's address ({holder['subdomain']})"
    return None


async def step_bootstrap(ctx: StepContext, tenant: dict[str, Any], node: dict[str, Any]) -> None:
    commands: list[str] = list(tenant.get("bootstrap_commands") or [])
    done: list[dict[str, Any]] = list(tenant.get("command_output") or [])
    # Commands that already succeeded are not run again; one in flight at a crash is re-run.
    done = [entry for entry in done if entry.get("exit_status") == 0][: len(commands)]
    if len(done) >= len(commands):
        return
    if not node.get("ssh_private_key_sealed") or not node.get("ssh_host_key"):
        raise PermanentStep(
            f"project has bootstrap commands but node {node['name']} has no SSH key and host key"
        )
    from controlplane.sshexec import run_in_container

    key = ctx.sealer.open(
        node["ssh_private_key_sealed"], table="nodes", column="ssh_private_key", row_id=node["id"]
    )
    host = node.get("ssh_host") or _host_of(node["api_url"])
    for command in commands[len(done) :]:
        result = await run_in_container(
            host=host,
            port=node["ssh_port"],
            username=node["ssh_user"],
            private_key_pem=key,
            known_host_key=node["ssh_host_key"],
            vmid=tenant["vmid"],
            command=command,
            timeout=300.0,
        )
        done.append(
            {
                "command": command,
                "exit_status": result.exit_status,
                "stdout": result.stdout[-4000:],
                "stderr": result.stderr[-4000:],
                "at": datetime.now(UTC).isoformat(),
            }
        )
        await ctx.db.execute(
            Q["set_commands"], {"id": tenant["id"], "output": Jsonb(done), "owner": ctx.owner}
        )
        if result.exit_status != 0:
            raise PermanentStep(
                f"bootstrap command {len(done)} of {len(commands)} "
                f"exited with {result.exit_status}: "
                f"{(result.stderr or result.stdout).strip()[-300:]}"
            )


def _host_of(api_url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(api_url).hostname or api_url


async def step_route(ctx: StepContext, tenant: dict[str, Any], node: dict[str, Any]) -> None:
    if ctx.route_hook is None or not tenant.get("ip_address"):
        return
    from controlplane.caddy.routes import upstream_of  # brackets for IPv6 addresses

    reason = ctx.addresses.refusal(tenant["ip_address"])
    if reason is not None:  # pinned before the rules, or TENANT_NETWORKS narrowed since
        raise PermanentStep(f"the pinned address is not routed: {reason}")
    await ctx.route_hook.upsert_active(
        tenant["id"], tenant["subdomain"], upstream_of(tenant["ip_address"], tenant["app_port"])
    )


PROVISION_STEPS = [
    ("clone", step_clone),
    ("configure", step_configure),
    ("start", step_start),
    ("address", step_address),
    ("bootstrap", step_bootstrap),
    ("route", step_route),
]


# -- power and removal -------------------------------------------------------------------


async def stop_container(ctx: StepContext, node: dict[str, Any], vmid: int) -> None:
    client = ctx.client(node)
    status = await client.container_status(node["pve_node"], vmid)
    if status.get("status") != "running":
        return
    try:
        upid = await client.stop(node["pve_node"], vmid)
    except ProxmoxNotRunningError:
        return
    await ctx.wait(node, "stop", upid)


async def destroy_container(ctx: StepContext, tenant: dict[str, Any], node: dict[str, Any]) -> None:
    """Stop and delete the tenant's container, if there is one and it is ours."""
    client, pve = ctx.client(node), node["pve_node"]
    if tenant.get("vmid") is None:
        return
    config = await find_container(client, pve, tenant["vmid"])
    if config is None:
        return  # already gone: counts as deleted
    if not is_ours(config, tenant["id"], tenant.get("spare_id")):
        log.warning(
            "not deleting a container that is not ours",
            extra={"tenant": str(tenant["id"]), "vmid": tenant["vmid"]},
        )
        return
    try:
        await stop_container(ctx, node, tenant["vmid"])
        upid = await client.delete(pve, tenant["vmid"], purge=True, destroy_unreferenced_disks=True)
    except ProxmoxNotFoundError:
        return
    await ctx.wait(node, "delete", upid)
