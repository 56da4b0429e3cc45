"""`GET /api/v1/capacity`: figures per node and cluster, headroom in tenants of each
project's size, daily samples and the days-until-full estimate."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx

from controlplane.capacity.forecast import days_until_full
from controlplane.capacity.service import take_sample
from tests.api.test_tenants import _online_node, _project
from tests.conftest import SimHandle

TODAY = date(2026, 1, 31)


def test_forecast() -> None:
    grow = [(TODAY - timedelta(days=d), 10_000.0 - 500 * d) for d in range(10, -1, -1)]
    assert days_until_full(grow, 20_000, TODAY) == 20.0  # 10 000 MB to go at 500 a day
    assert days_until_full(grow[-1:], 20_000, TODAY) is None  # one day: no trend
    flat = [(TODAY - timedelta(days=d), 5000.0) for d in range(5)]
    assert days_until_full(flat, 20_000, TODAY) is None  # no growth, never full
    shrink = [(TODAY - timedelta(days=d), 5000.0 + 100 * d) for d in range(5)]
    assert days_until_full(shrink, 20_000, TODAY) is None
    assert days_until_full(grow, 9000, TODAY) == 0.0  # already beyond


async def test_capacity_report(admin: httpx.AsyncClient, app: Any, pve_sim: SimHandle) -> None:
    db = app.state.cp.db
    big = await _online_node(admin, app, pve_sim, name="big", ram=16384)
    small = await _online_node(admin, app, pve_sim, name="small", ram=4096, templates=(9001,))
    web = await _project(admin, ram_mb=1024)  # template 9000: only on `big`
    await _project(admin, slug="tiny", name="Tiny", template_vmid=9001, ram_mb=512)
    for sub in ("a", "b", "c"):
        r = await admin.post("/api/v1/tenants", json={"project_id": web["id"], "subdomain": sub})
        assert r.status_code == 202 and r.json()["node_id"] == big["id"]
    await admin.put("/api/v1/settings", json={"ram_overcommit": 1.5})
    # 20 days of history on `big`: 128 MB more reserved every day, on a line to today's 3072.
    today = await db.fetch_val("SELECT current_date")
    for d in range(1, 21):
        await db.execute(
            "INSERT INTO capacity_samples (day, node_id, total_ram_mb, allocated_ram_mb,"
            " used_ram_mb, tenants, allocated_cores) VALUES (%(day)s, %(node)s, 16384,"
            " %(alloc)s, NULL, 1, 1)",
            {"day": today - timedelta(days=d), "node": big["id"], "alloc": 3072 - 128 * d},
        )
    r = await admin.get("/api/v1/capacity")
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["ram_overcommit"] == 1.5
    by_name = {n["name"]: n for n in report["nodes"]}
    b = by_name["big"]
    used = b["ram"].pop("used_mb")  # as Proxmox reported it at registration
    assert isinstance(used, int)
    assert b["ram"] == {"total_mb": 16384, "capacity_mb": 24576, "allocated_mb": 3072,
                        "free_mb": 21504}  # fmt: skip
    assert b["tenants"] == 3 and b["cpu"]["allocated_cores"] == 3 and b["placeable"]
    room = {h["slug"]: h["tenants"] for h in b["headroom"]}
    assert room == {"web": 21, "tiny": 0}  # 21504 // 1024; `big` lacks template 9001
    s = by_name["small"]
    assert {h["slug"]: h["tenants"] for h in s["headroom"]} == {"web": 0, "tiny": 12}
    assert s["days_until_full"] is None  # no history
    # 128 MB a day, 21504 MB free: 168 days.
    assert b["days_until_full"] == 168.0
    cluster = report["cluster"]
    assert cluster["tenants"] == 3 and cluster["ram"]["capacity_mb"] == 24576 + 6144
    assert {h["slug"]: h["tenants"] for h in cluster["headroom"]} == {"web": 21, "tiny": 12}
    assert len(report["samples"]) == 21 and report["samples"][-1]["day"] == str(today)
    assert report["samples"][0]["allocated_ram_mb"] == 3072 - 128 * 20
    # Maintenance: no headroom on the node.
    await admin.post(f"/api/v1/nodes/{small['id']}/maintenance", json={"enabled": True})
    report = (await admin.get("/api/v1/capacity")).json()
    small_now = next(n for n in report["nodes"] if n["name"] == "small")
    assert not small_now["placeable"] and all(h["tenants"] == 0 for h in small_now["headroom"])


async def test_daily_sample_is_one_row_per_node_and_day(
    admin: httpx.AsyncClient, app: Any, pve_sim: SimHandle
) -> None:
    db = app.state.cp.db
    node = await _online_node(admin, app, pve_sim)
    project = await _project(admin)
    await take_sample(db)
    await admin.post("/api/v1/tenants", json={"project_id": project["id"], "subdomain": "x"})
    await take_sample(db)
    rows = await db.fetch_all("SELECT * FROM capacity_samples")
    assert len(rows) == 1 and str(rows[0]["node_id"]) == node["id"]
    assert rows[0]["allocated_ram_mb"] == 1024 and rows[0]["tenants"] == 1


async def test_the_door(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/capacity")).status_code == 401
