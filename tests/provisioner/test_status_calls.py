"""The status poller's Proxmox calls grow with nodes, not tenants: one container list per
node per period, and a tenant's own call only when the list disagrees with what was seen."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections import Counter
from typing import Any

import httpx

from controlplane.provisioner.status import poll_once
from tests.provisioner.conftest import Plane

PERIOD = 3600.0  # long: nothing falls due again by itself while a test runs


class Counting:
    """The app's registry; its clients count the Proxmox methods the poller calls."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry
        self.calls: Counter[str] = Counter()

    def client(self, node: dict[str, Any]) -> Any:
        real, calls = self.registry.client(node), self.calls

        class Counted:
            def __getattr__(self, name: str) -> Any:
                method = getattr(real, name)

                async def call(*args: Any, **kwargs: Any) -> Any:
                    calls[name] += 1
                    return await method(*args, **kwargs)

                return call

        return Counted()

    def take(self) -> dict[str, int]:
        taken = dict(self.calls)
        self.calls.clear()
        return taken


async def _setup(plane: Plane, n: int) -> tuple[Any, Counting, dict[str, dict[str, Any]]]:
    """n tenants over both nodes (the project's template is on pve1; a second one on pve2)."""
    r = await plane.admin.post(
        "/api/v1/projects",
        json={"name": "Two", "slug": "two", "template_vmid": 9001, "ram_mb": 512},
    )
    assert r.status_code == 201, r.text
    two = r.json()["id"]
    made = [await plane.create(f"t{i}", **({"project_id": two} if i % 2 else {})) for i in range(n)]
    await plane.worker.run_until_idle()
    counting = Counting(plane.app.state.cp.proxmox)
    ctx = dataclasses.replace(plane.worker.ctx, registry=counting)
    tenants = {t["subdomain"]: await plane.tenant(t["id"]) for t in made}
    return ctx, counting, tenants


async def _health(plane: Plane) -> dict[str, str]:
    rows = await plane.db.fetch_all("SELECT subdomain, health FROM tenants")
    return {r["subdomain"]: r["health"] for r in rows}


async def _due(plane: Plane, where: str = "true") -> None:
    await plane.db.execute(
        f"UPDATE tenants SET observed_at = now() - interval '2 hours' WHERE {where}"
    )


async def test_one_list_per_node_and_a_call_only_for_what_changed(plane: Plane) -> None:
    ctx, counting, tenants = await _setup(plane, 6)
    assert {t["node_id"] for t in tenants.values()} == {n["id"] for n in plane.nodes}
    async with httpx.AsyncClient(timeout=2) as http:
        assert await poll_once(ctx, http, PERIOD) == 6
        assert counting.take() == {"list_containers": 2}  # running, as provisioned: no more
        assert set((await _health(plane)).values()) == {"ok"}
        assert await poll_once(ctx, http, PERIOD) == 0  # within the period: nothing due
        assert counting.take() == {}

        sim = plane.sim.sim
        sim.containers[tenants["t0"]["vmid"]].status = "stopped"  # type: ignore[attr-defined]
        del sim.containers[tenants["t1"]["vmid"]]  # type: ignore[attr-defined]
        await _due(plane)
        assert await poll_once(ctx, http, PERIOD) == 6
        assert counting.take() == {"list_containers": 2, "container_status": 2}
        health = await _health(plane)
        assert health["t0"] == "container_stopped" and health["t1"] == "container_missing"
        assert {health[f"t{i}"] for i in range(2, 6)} == {"ok"}

        # Nothing changed since: the lists are enough, even for the missing one.
        await _due(plane)
        assert await poll_once(ctx, http, PERIOD) == 6
        assert counting.take() == {"list_containers": 2}
        assert await _health(plane) == health

        # Started again behind our back: the list says running, a call confirms it once.
        sim.containers[tenants["t0"]["vmid"]].status = "running"  # type: ignore[attr-defined]
        await _due(plane)
        await poll_once(ctx, http, PERIOD)
        assert counting.take() == {"list_containers": 2, "container_status": 1}
        assert (await _health(plane))["t0"] == "ok"


async def test_a_nodes_tenants_are_claimed_together_and_replicas_share_them(
    plane: Plane,
) -> None:
    ctx, counting, tenants = await _setup(plane, 6)
    async with httpx.AsyncClient(timeout=2) as http:
        await poll_once(ctx, http, PERIOD)
        counting.take()
        # One tenant due makes its node due: its neighbours checked more than half a period
        # ago come along (one list for all), the one checked a moment ago waits.
        node = tenants["t0"]["node_id"]
        a, b, c = (t["id"] for t in tenants.values() if t["node_id"] == node)
        for tenant_id, minutes in ((a, 61), (b, 40), (c, 10)):
            await plane.db.execute(
                "UPDATE tenants SET observed_at = now() - make_interval(mins => %(m)s)"
                " WHERE id = %(id)s",
                {"id": tenant_id, "m": minutes},
            )
        assert await poll_once(ctx, http, PERIOD) == 2
        assert counting.take() == {"list_containers": 1}
        fresh = await plane.db.fetch_all(
            "SELECT id FROM tenants WHERE observed_at > now() - interval '1 minute'"
        )
        assert {r["id"] for r in fresh} >= {uuid.UUID(a), uuid.UUID(b)}
        assert uuid.UUID(c) not in {r["id"] for r in fresh}

        # Two replicas at once: every tenant checked once, every node listed once.
        await _due(plane)
        other = dataclasses.replace(ctx)
        done = await asyncio.gather(poll_once(ctx, http, PERIOD), poll_once(other, http, PERIOD))
        assert sum(done) == 6
        assert counting.take() == {"list_containers": 2}
