"""The refiller: keeps each project's `warm_pool_size` spares on every node that may hold them.

A round (every `WARM_POOL_SECONDS`) marks spares that can no longer be taken as `retiring`
(template changed, pool shrunk, project gone), adds rows for missing spares (`spare_add`:
the VMID chosen under the placement lock, before any Proxmox call), and claims the spares
that need work, each with a lease it renews. Building is clone, configure (tag `cp-spare`),
stopped, then the compare-and-swap to `ready`; retiring is stop, destroy, then the row goes.
Every step looks at Proxmox first, so a refiller killed anywhere leaves a row whose lease
runs out and the next refiller resumes it: no spare is lost and none is left behind.

Tenants come first: at most `WARM_POOL_CONCURRENCY` spares are worked at once, a node where
a tenant waits for its clone gets no refill, and a refill's clone takes the same per-node,
per-template clone lock as a tenant's, so it never overlaps one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from typing import Any

from controlplane.config import Settings
from controlplane.db import load_queries
from controlplane.periodic import Periodic
from controlplane.provisioner.context import LostLease, StepContext, TransientStep
from controlplane.provisioner.steps import (
    SPARE_TAG,
    clone_when_unlocked,
    find_container,
    net0_for,
    spare_marker,
    stop_container,
)
from controlplane.provisioner.worker import backoff
from controlplane.proxmox import ProxmoxAlreadyExistsError, ProxmoxNotFoundError
from controlplane.tasks import finish_or_cancel

log = logging.getLogger(__name__)
Q = load_queries("controlplane.warmpool")
# A build failing this many times in a row is destroyed and started afresh by a later refill.
MAX_BUILD_ATTEMPTS = 8


def _ours(config: dict[str, Any] | None, spare_id: Any) -> bool:
    return config is not None and spare_marker(spare_id) in str(config.get("description") or "")


class Refiller:
    def __init__(
        self,
        ctx: StepContext,
        *,
        concurrency: int = 2,
        lease_seconds: float = 30.0,
        interval: float = 2.0,
    ) -> None:
        self.ctx = ctx
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self._running: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._periodic = Periodic("warm pool", self.round, interval)

    @classmethod
    def from_settings(cls, ctx: StepContext, settings: Settings) -> Refiller:
        return cls(
            ctx,
            concurrency=settings.warm_pool_concurrency,
            lease_seconds=settings.worker_lease_seconds,
            interval=settings.warm_pool_seconds,
        )

    def start(self) -> None:
        self._periodic.start()

    async def stop(self, grace: float = 10.0) -> None:
        await self._periodic.stop()
        await finish_or_cancel(self._running.values(), grace)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                self.ctx.db.execute(Q["spare_release_all"], {"owner": self.ctx.owner}), timeout=5.0
            )

    async def run_until_idle(self, timeout: float = 60.0) -> None:
        """For tests and tools: rounds until every pool is full and nothing is in between."""
        async with asyncio.timeout(timeout):
            while True:
                await self.round()
                if self._running:
                    await asyncio.wait(
                        list(self._running.values()), return_when=asyncio.FIRST_COMPLETED
                    )
                    continue
                pending = await self.ctx.db.fetch_val(Q["spare_pending"])
                short = await self.ctx.db.fetch_all(Q["spare_deficits"])
                if not pending and not short:
                    return
                await asyncio.sleep(0.05)  # retries scheduled for later

    # -- a round -------------------------------------------------------------------------

    async def round(self) -> None:
        if self.ctx.stopping:
            return
        db, owner = self.ctx.db, self.ctx.owner
        if self._running:
            await db.fetch_all(
                Q["spare_renew"],
                {"ids": list(self._running), "owner": owner, "lease": self.lease_seconds},
            )
        await db.fetch_all(Q["spare_retire_stale"])
        free = self.concurrency - len(self._running)
        if free <= 0:
            return
        for row in await db.fetch_all(
            Q["spare_claim"], {"owner": owner, "lease": self.lease_seconds, "limit": free}
        ):
            self._spawn(row["id"])
            free -= 1
        if free <= 0:
            return
        avoid: dict[Any, list[int]] = {}
        # One new spare per node and project per round, least filled first: a node's
        # clones are serialised anyway, so slots go to other nodes before a second one here.
        for short in await db.fetch_all(Q["spare_deficits"]):
            if short["node_id"] not in avoid:
                avoid[short["node_id"]] = await self._cluster_vmids(short["node_id"])
            added = await db.fetch_one(
                Q["spare_add"],
                {
                    "id": uuid.uuid4(),
                    "project_id": short["project_id"],
                    "node_id": short["node_id"],
                    "owner": owner,
                    "lease": self.lease_seconds,
                    "avoid": avoid[short["node_id"]],
                },
            )
            if added is None:
                continue
            log.info(
                "refilling the warm pool",
                extra={"spare": str(added["id"]), "node": short["node"], "vmid": added["vmid"]},
            )
            self._spawn(added["id"])
            free -= 1
            if free <= 0:
                return

    async def _cluster_vmids(self, node_id: Any) -> list[int]:
        """VMIDs the node's cluster holds (foreign containers too): a refill avoids them."""
        node = await self.ctx.node(node_id)
        resources = await self.ctx.client(node).cluster_resources(type="vm")
        return sorted({int(r["vmid"]) for r in resources if "vmid" in r})

    def _spawn(self, spare_id: uuid.UUID) -> None:
        task = asyncio.create_task(self._process(spare_id), name=f"spare-{spare_id}")
        self._running[spare_id] = task
        task.add_done_callback(functools.partial(self._done, spare_id))

    def _done(self, spare_id: uuid.UUID, _task: asyncio.Task[None]) -> None:
        self._running.pop(spare_id, None)

    async def _process(self, spare_id: uuid.UUID) -> None:
        db, owner = self.ctx.db, self.ctx.owner
        spare: dict[str, Any] | None = None
        try:
            spare = await db.fetch_one(Q["spare_get"], {"id": spare_id})
            if spare is None or spare["lease_owner"] != owner:
                return
            if spare["status"] == "cloning":
                await self._build(spare)
            elif spare["status"] == "retiring":
                await self._retire(spare)
        except LostLease as exc:
            log.info("stopped working on spare", extra={"spare": str(spare_id), "reason": str(exc)})
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if spare is not None:
                with contextlib.suppress(Exception):
                    await self._failed(spare, exc)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(
                    db.execute(Q["spare_release"], {"id": spare_id, "owner": owner})
                )

    async def _failed(self, spare: dict[str, Any], exc: Exception) -> None:
        delay = exc.delay if isinstance(exc, TransientStep) else backoff(spare["attempts"])
        message = f"{spare.get('step') or 'unknown'}: {type(exc).__name__}: {exc}"[:1000]
        log.info("spare step will be retried", extra={"spare": str(spare["id"]), "error": message})
        row = await self.ctx.db.fetch_one(
            Q["spare_retry_later"],
            {"id": spare["id"], "owner": self.ctx.owner, "error": message, "delay": delay},
        )
        if (
            row is not None
            and row["attempts"] >= MAX_BUILD_ATTEMPTS
            and spare["status"] == "cloning"
            and not isinstance(exc, TransientStep)
        ):
            log.warning("spare keeps failing: retiring it", extra={"spare": str(spare["id"])})
            await self.ctx.db.execute(
                Q["spare_retire"], {"id": spare["id"], "owner": self.ctx.owner}
            )

    async def _set_step(self, spare: dict[str, Any], step: str) -> None:
        if self.ctx.stopping:
            raise LostLease("shutting down: the next refiller takes over from this step")
        ok = await self.ctx.db.fetch_one(
            Q["spare_set_step"],
            {"id": spare["id"], "status": spare["status"], "step": step, "owner": self.ctx.owner},
        )
        if ok is None:
            raise LostLease(f"spare {spare['id']} changed under us")
        spare["step"] = step

    async def _forget(self, spare: dict[str, Any], why: str) -> None:
        log.warning("spare dropped", extra={"spare": str(spare["id"]), "reason": why})
        await self.ctx.db.execute(Q["spare_forget"], {"id": spare["id"], "owner": self.ctx.owner})

    # -- the steps -----------------------------------------------------------------------

    async def _build(self, spare: dict[str, Any]) -> None:
        ctx = self.ctx
        node = await ctx.node(spare["node_id"])
        client, pve, vmid = ctx.client(node), node["pve_node"], spare["vmid"]
        await self._set_step(spare, "clone")
        config = await find_container(client, pve, vmid)
        if config is None:
            async with ctx.clone_lock(node["id"], spare["template_vmid"]):
                try:
                    upid = await clone_when_unlocked(
                        client,
                        pve,
                        template=spare["template_vmid"],
                        vmid=vmid,
                        hostname=f"spare-{vmid}",
                        description=spare_marker(spare["id"]) + "\n",
                    )
                except ProxmoxAlreadyExistsError:
                    config = await find_container(client, pve, vmid)
                    if config is None:  # taken on another node of the cluster
                        await self._forget(spare, "VMID taken elsewhere in the cluster")
                        return
                else:
                    await ctx.wait(node, "clone", upid)
                    config = await find_container(client, pve, vmid)
        if config is None:
            raise TransientStep("the clone is not visible yet", 0.5)
        if not _ours(config, spare["id"]):
            await self._forget(spare, f"VMID {vmid} holds a container that is not this spare")
            return
        if config.get("lock") == "create":
            raise TransientStep("the clone of a previous attempt is still running", 1.0)
        await self._set_step(spare, "configure")
        params: dict[str, object] = {"net0": net0_for(config), "tags": SPARE_TAG}
        if spare.get("ram_mb") is not None:
            params.update(memory=spare["ram_mb"], cores=spare["cores"])
        await client.set_config(pve, vmid, **params)
        await self._set_step(spare, "stopped")
        await stop_container(ctx, node, vmid)
        done = await ctx.db.fetch_one(Q["spare_ready"], {"id": spare["id"], "owner": ctx.owner})
        if done is None:
            raise LostLease(f"spare {spare['id']} changed before it was ready")
        log.info("spare ready", extra={"spare": str(spare["id"]), "vmid": vmid})

    async def _retire(self, spare: dict[str, Any]) -> None:
        ctx = self.ctx
        node = await ctx.node(spare["node_id"])
        client, pve, vmid = ctx.client(node), node["pve_node"], spare["vmid"]
        await self._set_step(spare, "destroy")
        config = await find_container(client, pve, vmid)
        if _ours(config, spare["id"]):
            if config is not None and config.get("lock") == "create":
                raise TransientStep("the spare's clone is still running", 1.0)
            await stop_container(ctx, node, vmid)
            try:
                upid = await client.delete(pve, vmid, purge=True, destroy_unreferenced_disks=True)
            except ProxmoxNotFoundError:
                pass
            else:
                await ctx.wait(node, "delete", upid)
        gone = await ctx.db.fetch_one(Q["spare_forget"], {"id": spare["id"], "owner": ctx.owner})
        if gone is None:
            raise LostLease(f"spare {spare['id']} changed before it was forgotten")
        log.info("spare retired", extra={"spare": str(spare["id"]), "vmid": vmid})
