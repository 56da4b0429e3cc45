"""The steps of each kind of operation. Each is safe to repeat after a crash at any line.

A step looks at Proxmox before it acts (the snapshot is there already, the archive with
this backup's id in its notes exists, the disk has that size), and a step that starts a
task records its UPID before waiting, so a resumed attempt waits for that task instead of
starting a second one. The operation's row says which step to resume at.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from psycopg.types.json import Jsonb

from controlplane.db import load_queries
from controlplane.errors import Conflict
from controlplane.operations.moveplan import plan_move
from controlplane.operations.schedule import to_prune
from controlplane.provisioner.context import LostLease, PermanentStep, StepContext, TransientStep
from controlplane.provisioner.leftovers import backup_notes, find_archive
from controlplane.provisioner.steps import (
    destroy_container,
    disk_gb_of,
    find_container,
    is_ours,
    step_address,
    step_bootstrap,
    step_clone,
    step_configure,
    step_route,
    step_start,
    stop_container,
)
from controlplane.proxmox import (
    ProxmoxClient,
    ProxmoxLockedError,
    ProxmoxNotRunningError,
    ProxmoxTaskError,
)
from controlplane.proxmox.errors import ProxmoxTaskTimeoutError
from controlplane.proxmox.upid import parse_upid

log = logging.getLogger(__name__)
Q = load_queries("controlplane.operations")


def storage_of(config: dict[str, Any] | None) -> str | None:
    rootfs = str((config or {}).get("rootfs", ""))
    head = rootfs.split(",", 1)[0]
    return head.split(":", 1)[0] if ":" in head else None


@dataclass
class Run:
    """One attempt at one operation: what its steps share."""

    ctx: StepContext
    op: dict[str, Any]
    tenant: dict[str, Any]
    node: dict[str, Any]
    # Monotonic instants of this attempt (a move's "down"); gone with the process.
    marks: dict[str, float] = field(default_factory=dict)

    @property
    def client(self) -> ProxmoxClient:
        return self.ctx.client(self.node)

    @property
    def pve(self) -> str:
        return str(self.node["pve_node"])

    @property
    def vmid(self) -> int:
        return int(self.tenant["vmid"])

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.op["params"])

    @property
    def state(self) -> dict[str, Any]:
        return dict(self.op["state"])

    async def remember(self, **patch: Any) -> None:
        ok = await self.ctx.db.fetch_one(
            Q["set_state"], {"id": self.op["id"], "patch": Jsonb(patch), "owner": self.ctx.owner}
        )
        if ok is None:
            raise LostLease(f"operation {self.op['id']} is no longer ours")
        self.op["state"] = {**self.op["state"], **patch}

    async def task(
        self,
        key: str,
        start: Callable[[], Awaitable[str]],
        node: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Start the step's task once, keep its UPID, wait for it.

        A task that failed is forgotten, so the next attempt starts a new one; one that is
        still running when the wait times out is kept and waited for again."""
        node = node or self.node
        upid = self.op["upids"].get(key)
        if upid is None:
            upid = await start()
            ok = await self.ctx.db.fetch_one(
                Q["set_upid"],
                {"id": self.op["id"], "step": key, "upid": upid, "owner": self.ctx.owner},
            )
            if ok is None:
                raise LostLease(f"operation {self.op['id']} is no longer ours")
            self.op["upids"] = {**self.op["upids"], key: upid}
        try:
            # Estimates are per task type (vzdump, imgdel ...), not per step: the deletes
            # of different backups, say, are one kind of task and learn from each other.
            return await self.ctx.wait(node, parse_upid(upid).type, upid)
        except ProxmoxTaskTimeoutError:
            raise
        except ProxmoxTaskError:
            await self.ctx.db.execute(
                Q["clear_upid"], {"id": self.op["id"], "step": key, "owner": self.ctx.owner}
            )
            self.op["upids"] = {k: v for k, v in self.op["upids"].items() if k != key}
            raise


Step = Callable[[Run], Awaitable[None]]


# -- snapshots ---------------------------------------------------------------------------


async def _snapshot_state(run: Run, name: str) -> str | None:
    """None: no such snapshot; "ready"; or its `snapstate` (prepare, delete)."""
    for snap in await run.client.list_snapshots(run.pve, run.vmid):
        if snap.get("name") == name:
            return str(snap.get("snapstate") or "ready")
    return None


async def snapshot_create(run: Run) -> None:
    name = run.params["name"]
    if await _snapshot_state(run, name) == "ready":
        return
    try:
        await run.task(
            "snapshot",
            lambda: run.client.create_snapshot(
                run.pve, run.vmid, name, description=run.params.get("description") or None
            ),
        )
    except ProxmoxTaskError:
        # "snapshot name already used": an earlier attempt's task made it after all.
        if await _snapshot_state(run, name) == "ready":
            return
        raise


async def snapshot_delete(run: Run) -> None:
    name = run.params["name"]
    if await _snapshot_state(run, name) is None:
        return
    try:
        await run.task("delete", lambda: run.client.delete_snapshot(run.pve, run.vmid, name))
    except ProxmoxTaskError:
        if await _snapshot_state(run, name) is None:
            return
        raise


async def stop(run: Run) -> None:
    await stop_container(run.ctx, run.node, run.vmid)


async def snapshot_rollback(run: Run) -> None:
    name = run.params["name"]
    if await _snapshot_state(run, name) != "ready":
        raise PermanentStep(f"snapshot {name!r} is not on the container (any more)")
    await run.task("rollback", lambda: run.client.rollback_snapshot(run.pve, run.vmid, name))


async def start_if_active(run: Run) -> None:
    """An active tenant runs again afterwards; a suspended one stays stopped."""
    if run.tenant["status"] == "active":
        await step_start(run.ctx, run.tenant, run.node)


async def route_if_active(run: Run) -> None:
    if run.tenant["status"] == "active":
        await step_route(run.ctx, run.tenant, run.node)


async def address_if_active(run: Run) -> None:
    if run.tenant["status"] == "active":
        await step_address(run.ctx, run.tenant, run.node)


# -- restart and resize --------------------------------------------------------------------


async def restart(run: Run) -> None:
    async def reboot() -> str:
        return await run.client.reboot(run.pve, run.vmid)

    try:
        await run.task("reboot", reboot)
    except ProxmoxNotRunningError:
        # Stopped behind our back: a restart of an active tenant means running again.
        await step_start(run.ctx, run.tenant, run.node)


async def resize_config(run: Run) -> None:
    await run.client.set_config(
        run.pve, run.vmid, memory=run.tenant["ram_mb"], cores=run.tenant["cores"]
    )


async def resize_disk(run: Run) -> None:
    wanted = run.params.get("disk_gb")
    config = await find_container(run.client, run.pve, run.vmid)
    current = disk_gb_of(config)
    if wanted is None or current == wanted:
        await run.remember(disk_gb=current)
        return
    if current is not None and current > wanted:
        raise PermanentStep(f"unable to shrink disk size: the disk is {current} GB")
    await run.task("resize", lambda: run.client.resize_disk(run.pve, run.vmid, f"{wanted}G"))
    await run.remember(disk_gb=wanted)


# -- rebuild -------------------------------------------------------------------------------


async def rebuild_destroy(run: Run) -> None:
    await destroy_container(run.ctx, run.tenant, run.node)
    # The container's snapshots are gone with it, and the new one runs bootstrap again.
    await run.ctx.db.execute(Q["snapshots_forget"], {"tenant_id": run.tenant["id"]})
    await run.ctx.db.execute(Q["commands_reset"], {"id": run.tenant["id"]})
    run.tenant["command_output"] = []


async def rebuild_clone(run: Run) -> None:
    await step_clone(run.ctx, run.tenant, run.node)


async def rebuild_configure(run: Run) -> None:
    await step_configure(run.ctx, run.tenant, run.node)
    # The template's disk; a tenant that had grown its disk gets that size back.
    config = await find_container(run.client, run.pve, run.vmid)
    current, wanted = disk_gb_of(config), run.tenant.get("disk_gb")
    if wanted is not None and current is not None and wanted > current:
        await run.task("resize", lambda: run.client.resize_disk(run.pve, run.vmid, f"{wanted}G"))
        current = wanted
    await run.remember(disk_gb=current)


async def rebuild_start(run: Run) -> None:
    # Bootstrap commands run inside the container: a suspended tenant's runs for them and
    # is stopped again at the end.
    await step_start(run.ctx, run.tenant, run.node)


async def rebuild_address(run: Run) -> None:
    await step_address(run.ctx, run.tenant, run.node)


async def rebuild_bootstrap(run: Run) -> None:
    await step_bootstrap(run.ctx, run.tenant, run.node)


async def stop_if_suspended(run: Run) -> None:
    if run.tenant["status"] == "suspended":
        await stop_container(run.ctx, run.node, run.vmid)


# -- backups -------------------------------------------------------------------------------


async def _find_archive(
    run: Run, node: dict[str, Any], storage: str, backup_id: Any
) -> dict[str, Any] | None:
    return await find_archive(run.ctx, node, storage, run.vmid, backup_id)


async def _backup_row(run: Run) -> dict[str, Any]:
    row = await run.ctx.db.fetch_one(Q["backup_by_id"], {"id": run.params["backup_id"]})
    if row is None:
        raise PermanentStep(f"backup {run.params['backup_id']} has no row any more")
    return row


async def backup_vzdump(run: Run) -> None:
    backup = await _backup_row(run)
    found = await _find_archive(run, run.node, backup["storage"], backup["id"])
    if found is None:
        try:
            await run.task(
                "vzdump",
                lambda: run.client.backup(
                    run.pve,
                    run.vmid,
                    storage=backup["storage"],
                    mode="snapshot",
                    compress="zstd",
                    notes_template=backup_notes(backup["id"]),
                    remove=False,  # retention is ours, not the storage's
                ),
            )
        except ProxmoxLockedError as exc:
            raise TransientStep(f"the container is locked: {exc}", 2.0) from None
        except ProxmoxTaskError as exc:
            # A storage that does not exist or takes no backups fails the whole job at
            # once; trying again changes nothing until the operator fixes the project.
            if "could not get storage information" in str(exc):
                raise PermanentStep(f"vzdump refused the storage: {exc}") from None
            raise
        found = await _find_archive(run, run.node, backup["storage"], backup["id"])
        if found is None:
            raise PermanentStep("vzdump finished but its archive is not on the storage")
    await run.ctx.db.execute(
        Q["backup_found"],
        {"id": backup["id"], "volid": found["volid"], "size": found.get("size")},
    )
    await run.remember(volid=found["volid"], size=found.get("size"))


async def backup_prune(run: Run) -> None:
    """After a scheduled backup: delete the scheduled ones its retention no longer keeps."""
    if not run.params.get("scheduled"):
        return
    schedule = await run.ctx.db.fetch_one(Q["schedule_get"], {"tenant_id": run.tenant["id"]})
    if schedule is None:
        return
    rows = await run.ctx.db.fetch_all(Q["scheduled_backups"], {"tenant_id": run.tenant["id"]})
    for backup in to_prune(
        rows,
        keep_last=schedule["keep_last"],
        keep_daily=schedule["keep_daily"],
        keep_weekly=schedule["keep_weekly"],
    ):
        if str(backup["id"]) == str(run.params["backup_id"]):
            continue  # never the one just made
        await delete_archive(run, backup)
        await run.ctx.db.execute(Q["backup_remove"], {"id": backup["id"]})
        log.info(
            "pruned a scheduled backup",
            extra={"tenant": str(run.tenant["id"]), "backup": str(backup["id"])},
        )


async def delete_archive(run: Run, backup: dict[str, Any]) -> None:
    """Remove a backup's archive; gone already is fine (Proxmox's delete is idempotent)."""
    if backup.get("node_id") is None:
        raise PermanentStep(f"backup {backup['id']}'s node was removed")
    node = await run.ctx.node(backup["node_id"])
    volid = backup.get("volid")
    if volid is None:
        found = await _find_archive(run, node, backup["storage"], backup["id"])
        if found is None:
            return  # its vzdump never wrote one
        volid = found["volid"]
    await run.task(
        f"delete {backup['id']}",
        lambda: run.ctx.client(node).delete_volume(node["pve_node"], backup["storage"], volid),
        node=node,
    )


async def backup_delete(run: Run) -> None:
    await delete_archive(run, await _backup_row(run))


async def restore_prepare(run: Run) -> None:
    """Where the disk goes: the storage of the container's own root disk, kept in the
    operation's state before anything is overwritten (a late restore failure destroys
    the config that says it)."""
    if run.state.get("storage"):
        return
    config = await find_container(run.client, run.pve, run.vmid)
    storage = storage_of(config)
    if storage is None:
        raise PermanentStep("cannot tell which storage the container's disk is on")
    await run.remember(storage=storage)


async def restore_archive(run: Run) -> None:
    backup = await _backup_row(run)
    if backup["volid"] is None:
        raise PermanentStep(f"backup {backup['id']} has no archive")
    await run.task(
        "restore",
        lambda: run.client.restore(
            run.pve, run.vmid, backup["volid"], storage=run.state["storage"], force=True
        ),
    )


async def restore_configure(run: Run) -> None:
    # The backed-up config may carry an older size or description: ours again.
    await step_configure(run.ctx, run.tenant, run.node)
    await run.remember(disk_gb=disk_gb_of(await find_container(run.client, run.pve, run.vmid)))


# -- moves ---------------------------------------------------------------------------------
#
# plan -> (migrate | stop, backup, destroy_source, restore, configure, start) -> address ->
# health -> switch -> route -> cleanup -> verdict. Each step of the other method is a no-op.
# The tenant's row names the source until `switch`; the steps before it that work on the
# target look the target up themselves.


async def _target(run: Run) -> dict[str, Any]:
    return await run.ctx.node(run.params["target_node_id"])


def _method(run: Run) -> str:
    return str(run.state.get("method") or "")


async def _mark_down(run: Run) -> None:
    """The container stops now: the monotonic instant for this attempt, the wall clock for
    an attempt that resumes after a crash."""
    if "down_at" in run.state:
        return
    run.marks["down"] = time.monotonic()
    await run.remember(down_at=time.time())


async def move_plan(run: Run) -> None:
    """Which method: decided at the request when it could look (a 409 up front), else now
    (a drain's moves), once."""
    if _method(run):
        return
    plan = run.params.get("plan")
    if not plan:
        target = await _target(run)
        try:
            plan = await plan_move(
                run.client,
                run.pve,
                run.ctx.client(target),
                target["pve_node"],
                run.vmid,
                wanted=run.params.get("method") or "auto",
                backup_storage=run.tenant.get("backup_storage"),
            )
        except Conflict as exc:
            raise PermanentStep(exc.message) from None
    await run.ctx.db.execute(Q["move_set_method"], {"id": run.op["id"], "method": plan["method"]})
    await run.remember(**plan)


async def move_migrate(run: Run) -> None:
    """Restart migration to the target; a container already there is ours and done."""
    if _method(run) != "migrate":
        return
    target = await _target(run)
    running = False
    if "migrate" not in run.op["upids"]:  # else: wait for the task an earlier attempt began
        there = await find_container(run.ctx.client(target), target["pve_node"], run.vmid)
        if there is not None and is_ours(there, run.tenant["id"]):
            return
        status = await run.client.container_status(run.pve, run.vmid)
        running = status.get("status") == "running"
        if running:
            await _mark_down(run)  # the task shuts it down first, starts it on the target last
    try:
        await run.task(
            "migrate",
            lambda: run.client.migrate(
                run.pve, run.vmid, target["pve_node"], restart=True if running else None
            ),
        )
    except ProxmoxTaskError as exc:
        log_tail = " ".join(getattr(exc, "log", None) or [])
        if any(x in log_tail for x in ("non-migratable snapshot", "storage type", "clone of")):
            raise PermanentStep(
                "the container's disk cannot be migrated (local snapshots, a linked clone or "
                "the storage's type): move it by backup and restore"
            ) from None
        raise


async def _stop_source(run: Run) -> None:
    """Backup and restore: the source copy stops before its archive, so it has every write."""
    status = await run.client.container_status(run.pve, run.vmid)
    if status.get("status") == "running":
        await _mark_down(run)
        await stop_container(run.ctx, run.node, run.vmid)


async def _backup_stopped(run: Run, storage: str) -> None:
    await _stop_source(run)
    try:
        await run.task(
            "vzdump",
            lambda: run.client.backup(
                run.pve,
                run.vmid,
                storage=storage,
                mode="stop",
                compress="zstd",
                notes_template=backup_notes(run.op["id"]),
                remove=False,
            ),
        )
    except ProxmoxLockedError as exc:
        raise TransientStep(f"the container is locked: {exc}", 2.0) from None


async def move_backup(run: Run) -> None:
    """The archive on the storage both nodes share, found again by the operation's id in
    its notes; kept as one of the tenant's backups until the move is done, so a move that
    fails after the source is gone leaves the archive a repair restores."""
    if _method(run) != "backup_restore" or run.state.get("volid"):
        return
    storage = run.state["backup_storage"]
    found = await _find_archive(run, run.node, storage, run.op["id"])
    if found is None:
        # Proxmox runs one vzdump per node at a time: the container stops only when the
        # node's turn comes among our moves, instead of waiting stopped for vzdump's lock.
        async with run.ctx.session_lock(f"vzdump:{run.node['id']}"):
            await _backup_stopped(run, storage)
        found = await _find_archive(run, run.node, storage, run.op["id"])
        if found is None:
            raise PermanentStep("vzdump finished but its archive is not on the storage")
    await run.ctx.db.execute(
        Q["move_backup_keep"],
        {
            "id": run.op["id"],
            "tenant_id": run.tenant["id"],
            "node_id": run.node["id"],
            "pve_node": run.pve,
            "storage": storage,
            "volid": found["volid"],
            "size": found.get("size"),
        },
    )
    await run.remember(volid=found["volid"])


async def move_destroy_source(run: Run) -> None:
    if _method(run) != "backup_restore":
        return
    if not run.state.get("volid"):
        raise PermanentStep("no archive of the container: the source is not destroyed")
    await destroy_container(run.ctx, run.tenant, run.node)


async def move_restore(run: Run) -> None:
    if _method(run) != "backup_restore":
        return
    target = await _target(run)
    client = run.ctx.client(target)
    if "restore" not in run.op["upids"]:
        there = await find_container(client, target["pve_node"], run.vmid)
        if there is not None:
            if is_ours(there, run.tenant["id"]):
                return
            raise PermanentStep(f"VMID {run.vmid} on {target['name']} is not this tenant's")
    await run.task(
        "restore",
        lambda: client.restore(
            target["pve_node"], run.vmid, run.state["volid"], storage=run.state["target_storage"]
        ),
        node=target,
    )


async def move_configure(run: Run) -> None:
    if _method(run) == "backup_restore":
        await step_configure(run.ctx, run.tenant, await _target(run))


async def move_start(run: Run) -> None:
    if _method(run) == "backup_restore" and run.tenant["status"] == "active":
        await step_start(run.ctx, run.tenant, await _target(run))


async def move_address(run: Run) -> None:
    """The tenant's address as the container on the target reports it (the pin stays; a
    different report is flagged, as after any start)."""
    if run.tenant["status"] == "active":
        await step_address(run.ctx, run.tenant, await _target(run))


async def _health_once(run: Run, target: dict[str, Any], http: httpx.AsyncClient) -> str | None:
    """None when the tenant answers on the target, else what is wrong."""
    status = await run.ctx.client(target).container_status(target["pve_node"], run.vmid)
    if status.get("status") != "running":
        return f"the container is {status.get('status')}"
    path, ip = run.tenant.get("health_path"), run.tenant.get("ip_address")
    if not path or not ip:
        return None  # nothing to ask: running is all we can know
    refused = run.ctx.addresses.refusal(ip)
    if refused is not None:
        return f"its address is not checked: {refused}"
    try:
        host = f"[{ip}]" if ":" in ip else ip
        response = await http.get(f"http://{host}:{run.tenant['app_port']}{path}")
    except httpx.HTTPError as exc:
        return f"{path} did not answer ({type(exc).__name__})"
    return None if response.status_code < 400 else f"{path} answered HTTP {response.status_code}"


async def move_health(run: Run) -> None:
    """The project's health path answers on the target within MOVE_HEALTH_WAIT_S. When it
    never does, the move goes on (the container is on the target: the route must follow
    it) and fails at the end with the reason."""
    if run.tenant["status"] != "active" or run.state.get("health"):
        return
    target = await _target(run)
    deadline = run.state.get("health_deadline")
    if deadline is None:
        deadline = time.time() + run.ctx.move_health_wait_s
        await run.remember(health_deadline=deadline)
    async with httpx.AsyncClient(timeout=2.0) as http:
        while True:
            problem = await _health_once(run, target, http)
            if problem is None:
                await run.remember(health="ok")
                return
            if time.time() >= deadline:
                wait = run.ctx.move_health_wait_s
                await run.remember(
                    health=f"not healthy on {target['name']} after {wait:g} s: {problem}"
                )
                return
            await asyncio.sleep(0.25)


async def move_switch(run: Run) -> None:
    await run.ctx.db.fetch_one(
        Q["move_switch"],
        {
            "id": run.tenant["id"],
            "source": run.params["source_node_id"],
            "target": run.params["target_node_id"],
            "op_id": run.op["id"],
        },
    )
    run.tenant["node_id"] = run.params["target_node_id"]
    run.node = await _target(run)


async def move_route(run: Run) -> None:
    """The flip: the route points at the container on the target (WireGuard peers name the
    tenant's address, not its node: nothing of theirs changes). The downtime ends here."""
    await route_if_active(run)
    if "downtime_s" in run.state:
        return
    down = run.marks.get("down")
    if down is not None:
        downtime = time.monotonic() - down
    elif run.state.get("down_at") is not None:
        downtime = time.time() - float(run.state["down_at"])  # resumed after a crash
    else:
        downtime = 0.0  # it was not running: nothing went down
    await run.ctx.db.execute(
        Q["move_set_downtime"], {"id": run.op["id"], "downtime": round(downtime, 3)}
    )
    await run.remember(downtime_s=round(downtime, 3))


async def move_cleanup(run: Run) -> None:
    """Backup and restore: the archive goes, and its row (the source went before)."""
    if _method(run) != "backup_restore" or not run.state.get("volid"):
        return
    await run.task(
        "delete_archive",
        lambda: run.client.delete_volume(run.pve, run.state["backup_storage"], run.state["volid"]),
    )
    await run.ctx.db.execute(Q["move_backup_forget"], {"id": run.op["id"]})


async def move_verdict(run: Run) -> None:
    health = run.state.get("health")
    if health and health != "ok":
        raise PermanentStep(f"{health}; the tenant was moved and is routed there")


async def move_undo(run: Run) -> None:
    """A move that fails for good: the tenant must end on exactly one node, the one its
    container is on, and running if it is active. Best effort; what it cannot do is logged
    (the status poller flags the tenant, and a repair restores the kept archive)."""
    target = await _target(run)
    tclient = run.ctx.client(target)
    there = await find_container(tclient, target["pve_node"], run.vmid)
    if there is not None and is_ours(there, run.tenant["id"]):
        if str(run.tenant["node_id"]) != str(target["id"]):
            await move_switch(run)  # the container is on the target: the tenant follows it
            await route_if_active(run)
        return
    source = await run.ctx.node(run.params["source_node_id"])
    sclient = run.ctx.client(source)
    volid = run.state.get("volid")
    if await find_container(sclient, source["pve_node"], run.vmid) is None:
        if not volid or not run.state.get("source_storage"):
            return
        await run.task(
            "restore_source",
            lambda: sclient.restore(
                source["pve_node"], run.vmid, volid, storage=run.state["source_storage"]
            ),
            node=source,
        )
        await step_configure(run.ctx, run.tenant, source)
    if volid:  # the source copy is there again: the archive is not needed any more
        await run.task(
            "delete_archive",
            lambda: sclient.delete_volume(source["pve_node"], run.state["backup_storage"], volid),
            node=source,
        )
        await run.ctx.db.execute(Q["move_backup_forget"], {"id": run.op["id"]})
    if run.tenant["status"] == "active":
        await step_start(run.ctx, run.tenant, source)


# -- repair --------------------------------------------------------------------------------


async def repair_inspect(run: Run) -> None:
    """What the container needs: nothing but a start, a restore, or a new clone."""
    if run.state.get("mode"):
        return
    config = await find_container(run.client, run.pve, run.vmid)
    if config is not None:
        if not is_ours(config, run.tenant["id"]):
            raise PermanentStep(f"VMID {run.vmid} holds a container that is not this tenant's")
        await run.remember(mode="start")
        return
    backup = await run.ctx.db.fetch_one(
        Q["latest_backup_on_node"], {"tenant_id": run.tenant["id"], "node_id": run.node["id"]}
    )
    if backup is not None:
        await run.remember(mode="restore", backup_id=str(backup["id"]), volid=backup["volid"])
    else:
        await run.remember(mode="recreate")
    log.warning(
        "repair: the container is gone",
        extra={"tenant": str(run.tenant["id"]), "mode": run.state["mode"]},
    )


async def repair_recreate(run: Run) -> None:
    mode = run.state["mode"]
    if mode == "restore":
        if await find_container(run.client, run.pve, run.vmid) is None:
            storages = await run.client.storages(run.pve, content="rootdir")
            if not storages:
                raise PermanentStep(f"node {run.node['name']} has no storage for containers")
            await run.task(
                "restore",
                lambda: run.client.restore(
                    run.pve, run.vmid, run.state["volid"], storage=storages[0]["storage"]
                ),
            )
        await step_configure(run.ctx, run.tenant, run.node)
    elif mode == "recreate":
        if run.tenant.get("template_vmid") is None:
            raise PermanentStep("the tenant's project is gone: nothing to recreate it from")
        await run.ctx.db.execute(Q["commands_reset"], {"id": run.tenant["id"]})
        run.tenant["command_output"] = []
        await step_clone(run.ctx, run.tenant, run.node)
        await step_configure(run.ctx, run.tenant, run.node)


async def repair_bootstrap(run: Run) -> None:
    if run.state["mode"] == "recreate":
        await step_start(run.ctx, run.tenant, run.node)
        await step_bootstrap(run.ctx, run.tenant, run.node)


STEPS: dict[str, list[tuple[str, Step]]] = {
    "snapshot_create": [("snapshot", snapshot_create)],
    "snapshot_delete": [("delete", snapshot_delete)],
    "snapshot_rollback": [
        ("stop", stop),
        ("rollback", snapshot_rollback),
        ("start", start_if_active),
    ],
    "backup_create": [("vzdump", backup_vzdump), ("prune", backup_prune)],
    "backup_delete": [("delete", backup_delete)],
    "backup_restore": [
        ("prepare", restore_prepare),
        ("stop", stop),
        ("restore", restore_archive),
        ("configure", restore_configure),
        ("start", start_if_active),
        ("address", address_if_active),
    ],
    "rebuild": [
        ("stop", stop),
        ("destroy", rebuild_destroy),
        ("clone", rebuild_clone),
        ("configure", rebuild_configure),
        ("start", rebuild_start),
        ("address", rebuild_address),
        ("bootstrap", rebuild_bootstrap),
        ("stop_again", stop_if_suspended),
    ],
    "resize": [("config", resize_config), ("disk", resize_disk)],
    "restart": [("reboot", restart)],
    "repair": [
        ("inspect", repair_inspect),
        ("recreate", repair_recreate),
        ("bootstrap", repair_bootstrap),
        ("start", start_if_active),
        ("address", address_if_active),
        ("route", route_if_active),
        ("stop_again", stop_if_suspended),
    ],
    "move": [
        ("plan", move_plan),
        ("migrate", move_migrate),
        ("backup", move_backup),
        ("destroy_source", move_destroy_source),
        ("restore", move_restore),
        ("configure", move_configure),
        ("start", move_start),
        ("address", move_address),
        ("health", move_health),
        ("switch", move_switch),
        ("route", move_route),
        ("cleanup", move_cleanup),
        ("verdict", move_verdict),
    ],
}

# What a kind does when it fails for good, before the final transaction (best effort).
UNDO: dict[str, Step] = {"move": move_undo}
