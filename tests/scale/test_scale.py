"""Scale: 10,000 tenants on 50 simulated nodes (issue 16 item 8), in `make proof` (-m slow).

The bulk of the tenants is inserted in SQL as provisioning leaves them (active, RAM
reserved, the node's ledger raised by the same amount) with a matching running container
in the simulator. Printed (-s): admin and user list latency, one status-poll round over
the 50 nodes with its Proxmox calls. Asserted: counts and Proxmox calls per round
(<= nodes + changed tenants); never time.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from controlplane.config import Settings
from controlplane.metrics.registry import proxmox_call
from tests.auth.conftest import bearer, login, register, user_settings
from tests.conftest import SimHandle, start_sim

pytestmark = pytest.mark.slow

NODES, TENANTS, VMID_BASE, RAM_MB = 50, 10_000, 100_000, 512
NODE_RAM_MB = 10_000_000


@pytest.fixture
def settings(database_url: str) -> Settings:
    return user_settings(database_url)


@pytest.fixture
async def big_sim() -> Any:
    names = [f"pve{i + 1}" for i in range(NODES)]
    handle, server = await start_sim(
        nodes=names,
        node_memory_mb=NODE_RAM_MB,
        task_durations={"vzclone": 0.1, "vzstart": 0.05, "vzstop": 0.03, "vzdestroy": 0.03},
    )
    yield handle
    await server.close()  # type: ignore[attr-defined]


class CallCounter:
    """The Proxmox registry's observer: every call, by its /metrics label."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def proxmox_call_ended(
        self, node: str, method: str, path: str, error: BaseException | None, seconds: float
    ) -> None:
        self.calls[proxmox_call(method, path)] += 1


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def timed_gets(
    c: httpx.AsyncClient, paths: list[str], rounds: int, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    seconds: list[float] = []
    for _ in range(rounds):
        for path in paths:
            start = time.perf_counter()
            r = await c.get(path, headers=headers)
            seconds.append(time.perf_counter() - start)
            assert r.status_code == 200, (path, r.text)
    return {
        "requests": len(seconds),
        "p50_ms": round(statistics.median(seconds) * 1000, 1),
        "p99_ms": round(p(seconds, 0.99) * 1000, 1),
        "max_ms": round(max(seconds) * 1000, 1),
    }


async def seed_bulk(db: Any, sim: Any, project_id: str, owner_id: str) -> None:
    """10,000 active tenants spread over the nodes, as provisioning leaves them, and their
    running containers; the first 20 belong to the user."""
    await db.execute(
        "INSERT INTO tenants (id, name, subdomain, project_id, node_id, vmid, ram_mb, cores,"
        " ram_reserved, status, owner_user_id)"
        " SELECT gen_random_uuid(), 's' || g, 's' || g, %(project)s,"
        " (SELECT id FROM nodes ORDER BY name OFFSET g %% %(nodes)s LIMIT 1), %(base)s + g,"
        " %(ram)s, 1, true, 'active', CASE WHEN g < 20 THEN %(owner)s::uuid END"
        " FROM generate_series(0, %(n)s - 1) g",
        {"project": project_id, "nodes": NODES, "base": VMID_BASE, "ram": RAM_MB,
         "owner": owner_id, "n": TENANTS},
    )  # fmt: skip
    await db.execute(
        "UPDATE nodes n SET allocated_ram_mb = n.allocated_ram_mb + s.ram"
        " FROM (SELECT node_id, sum(ram_mb) AS ram FROM tenants WHERE subdomain LIKE 's%%'"
        " GROUP BY node_id) s WHERE s.node_id = n.id"
    )
    await db.execute("ANALYZE tenants")
    from controlplane.pvesim.models import Container

    now = time.time()
    for row in await db.fetch_all(
        "SELECT t.vmid, t.name, n.pve_node FROM tenants t JOIN nodes n ON n.id = t.node_id"
    ):
        sim.containers[row["vmid"]] = Container(
            vmid=row["vmid"],
            node=row["pve_node"],
            config={"hostname": row["name"], "memory": RAM_MB, "cores": 1, "rootfs": "local-lvm:8"},
            status="running",
            started_at=now - 3600,
            created_at=now - 3600,
            runs=[[now - 3600, None]],
        )


async def poll_round(app: Any, period: float) -> dict[str, Any]:
    """One status-poll round over every node, counting Proxmox calls."""
    from controlplane.nodes.registry import ProxmoxRegistry
    from controlplane.provisioner.addresses import AddressPolicy
    from controlplane.provisioner.context import StepContext
    from controlplane.provisioner.status import poll_once

    cp = app.state.cp
    counter = CallCounter()
    registry = ProxmoxRegistry(cp.sealer, observer=counter)
    ctx = StepContext(
        db=cp.db,
        registry=registry,
        sealer=cp.sealer,
        owner="scale",
        addresses=AddressPolicy.from_settings(app.state.cp.settings),
    )
    try:
        async with httpx.AsyncClient(timeout=5.0) as http:
            start = time.perf_counter()
            checked = await poll_once(ctx, http, period)
            seconds = time.perf_counter() - start
    finally:
        await registry.close()
    return {"checked": checked, "calls": sum(counter.calls.values()), "by_kind": dict(counter.calls),
            "seconds": round(seconds, 2)}  # fmt: skip


async def test_scale_10000_tenants_50_nodes(admin, client, app, big_sim: SimHandle) -> None:  # type: ignore[no-untyped-def]
    db = app.state.cp.db
    sim = big_sim.sim
    figures: dict[str, Any] = {}
    for i in range(NODES):
        body = big_sim.node_body(
            f"pve{i + 1}", total_ram_mb=NODE_RAM_MB,
            vmid_range_start=VMID_BASE, vmid_range_end=VMID_BASE + 2 * TENANTS,
        )  # fmt: skip
        r = await admin.post("/api/v1/nodes", json=body)
        assert r.status_code == 201, r.text
    await db.execute("UPDATE nodes SET status = 'online'")  # what the node poller says
    r = await admin.post(
        "/api/v1/projects",
        json={"name": "Web", "slug": "web", "template_vmid": 9000, "ram_mb": RAM_MB},
    )
    assert r.status_code == 201, r.text
    project_id = r.json()["id"]
    user = await register(client, "scale@example.com")
    tokens = await login(client, "scale@example.com")

    started = time.perf_counter()
    await seed_bulk(db, sim, project_id, user["id"])
    figures["seed_s"] = round(time.perf_counter() - started, 1)

    # The lists, a few pages deep and filtered.
    node_id = await db.fetch_val("SELECT id FROM nodes WHERE name = 'pve7'")
    admin_paths = [
        "/api/v1/tenants?limit=50",
        "/api/v1/tenants?limit=50&offset=5000",
        "/api/v1/tenants?limit=100&offset=9900",
        "/api/v1/tenants?status=active&limit=50&offset=2000",
        f"/api/v1/tenants?node_id={node_id}&limit=50",
        f"/api/v1/tenants?project_id={project_id}&limit=50&offset=500",
        f"/api/v1/tenants?owner_user_id={user['id']}",
        "/api/v1/tenants?status=error",
    ]
    r = await admin.get("/api/v1/tenants?limit=1")
    assert r.json()["total"] == TENANTS
    r = await admin.get(f"/api/v1/tenants?node_id={node_id}&limit=1")
    assert r.json()["total"] == TENANTS // NODES
    figures["admin_list"] = await timed_gets(admin, admin_paths, rounds=25)
    r = await client.get("/api/v1/user/tenants", headers=bearer(tokens["access_token"]))
    assert r.status_code == 200 and len(r.json()["items"]) == 20, r.text
    figures["user_list"] = await timed_gets(
        client, ["/api/v1/user/tenants"], rounds=100, headers=bearer(tokens["access_token"])
    )

    # Status polling: first sight, then the next period with some stopped behind our back.
    figures["poll_first"] = await poll_round(app, 30.0)
    assert figures["poll_first"]["checked"] == TENANTS
    assert figures["poll_first"]["calls"] <= NODES
    stopped = random.Random(8).sample(range(TENANTS), 100)
    for g in stopped:
        sim.containers[VMID_BASE + g].status = "stopped"
    await db.execute("UPDATE tenants SET observed_at = now() - interval '1 hour'")
    figures["poll_100_changed"] = await poll_round(app, 30.0)
    assert figures["poll_100_changed"]["checked"] == TENANTS
    assert figures["poll_100_changed"]["calls"] <= NODES + len(stopped)

    print("\nscale figures:", json.dumps(figures, default=str, indent=1))
