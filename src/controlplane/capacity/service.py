"""The capacity report: per node and for the cluster, from live rows and daily samples."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

from controlplane.capacity.forecast import days_until_full
from controlplane.db import Executor, load_queries
from controlplane.sysconfig import service as sysconfig

Q = load_queries("controlplane.capacity")
WINDOW_DAYS = 30
KEEP_DAYS = 400  # a year of samples, and a little more


def _headroom(node: dict[str, Any], project: dict[str, Any], placeable: bool) -> int:
    if not placeable or project["template_vmid"] not in node["templates"]:
        return 0
    if project["needs_ssh"] and not node["has_ssh"]:
        return 0
    free = node["capacity_ram_mb"] - node["allocated_ram_mb"]
    return max(free, 0) // project["ram_mb"]


def _ram(total: int, capacity: int, allocated: int, used: int | None) -> dict[str, Any]:
    return {"total_mb": total, "capacity_mb": capacity, "allocated_mb": allocated,
            "used_mb": used, "free_mb": max(capacity - allocated, 0)}  # fmt: skip


async def capacity_report(db: Executor) -> dict[str, Any]:
    nodes = await db.fetch_all(Q["capacity_nodes"])
    projects = await db.fetch_all(Q["capacity_projects"])
    history = await db.fetch_all(Q["capacity_history"], {"days": WINDOW_DAYS})
    today: date = await db.fetch_val("SELECT current_date")
    overcommit = float(await sysconfig.get_value(db, "ram_overcommit"))

    per_node: dict[Any, list[tuple[date, float]]] = defaultdict(list)
    for row in history:
        if row["day"] != today:  # today's figure is the live one
            per_node[row["node_id"]].append((row["day"], float(row["allocated_ram_mb"])))

    out_nodes: list[dict[str, Any]] = []
    cluster_room: dict[Any, int] = defaultdict(int)
    for node in nodes:
        placeable = node["status"] == "online" and not node["maintenance"]
        headroom = []
        for project in projects:
            room = _headroom(node, project, placeable)
            cluster_room[project["id"]] += room
            headroom.append({"project_id": project["id"], "slug": project["slug"],
                             "ram_mb": project["ram_mb"], "tenants": room})  # fmt: skip
        points = [*per_node[node["id"]], (today, float(node["allocated_ram_mb"]))]
        out_nodes.append(
            {
                "id": node["id"],
                "name": node["name"],
                "status": node["status"],
                "maintenance": node["maintenance"],
                "placeable": placeable,
                "ram": _ram(
                    node["total_ram_mb"],
                    node["capacity_ram_mb"],
                    node["allocated_ram_mb"],
                    node["used_ram_mb"],
                ),
                "cpu": {
                    "count": node["cpu_count"],
                    "allocated_cores": node["allocated_cores"],
                    "usage": node["cpu"],
                },
                "tenants": node["tenants"],
                "headroom": headroom,
                "days_until_full": days_until_full(points, node["capacity_ram_mb"], today),
            }
        )

    samples = _daily_totals(history, nodes, today)
    used = [n["used_ram_mb"] for n in nodes if n["used_ram_mb"] is not None]
    capacity = sum(n["capacity_ram_mb"] for n in nodes)
    allocated = sum(n["allocated_ram_mb"] for n in nodes)
    cluster = {
        "ram": _ram(
            sum(n["total_ram_mb"] for n in nodes), capacity, allocated, sum(used) if used else None
        ),
        "tenants": sum(n["tenants"] for n in nodes),
        "headroom": [
            {
                "project_id": p["id"],
                "slug": p["slug"],
                "ram_mb": p["ram_mb"],
                "tenants": cluster_room[p["id"]],
            }
            for p in projects
        ],
        "days_until_full": days_until_full(
            [(s["day"], float(s["allocated_ram_mb"])) for s in samples], capacity, today
        ),
    }
    return {"ram_overcommit": overcommit, "nodes": out_nodes, "cluster": cluster,
            "samples": samples}  # fmt: skip


def _daily_totals(
    history: list[dict[str, Any]], nodes: list[dict[str, Any]], today: date
) -> list[dict[str, Any]]:
    """Cluster totals per day; today's from the live rows."""
    days: dict[date, dict[str, Any]] = {}
    for row in history:
        if row["day"] == today:
            continue
        day = days.setdefault(row["day"], {"day": row["day"], "total_ram_mb": 0,
                                           "allocated_ram_mb": 0, "used_ram_mb": None,
                                           "tenants": 0})  # fmt: skip
        day["total_ram_mb"] += row["total_ram_mb"]
        day["allocated_ram_mb"] += row["allocated_ram_mb"]
        day["tenants"] += row["tenants"]
        if row["used_ram_mb"] is not None:
            day["used_ram_mb"] = (day["used_ram_mb"] or 0) + row["used_ram_mb"]
    used = [n["used_ram_mb"] for n in nodes if n["used_ram_mb"] is not None]
    days[today] = {
        "day": today,
        "total_ram_mb": sum(n["total_ram_mb"] for n in nodes),
        "allocated_ram_mb": sum(n["allocated_ram_mb"] for n in nodes),
        "used_ram_mb": sum(used) if used else None,
        "tenants": sum(n["tenants"] for n in nodes),
    }
    return [days[d] for d in sorted(days)]


async def take_sample(db: Executor) -> None:
    """Record today's figures of every node (idempotent: the day's row is replaced)."""
    await db.execute(Q["capacity_sample"])
    await db.execute(Q["capacity_prune"], {"keep": KEEP_DAYS})
