"""Capacity: per node and for the cluster, with the allocated RAM of the last 30 days as a
chart (inline SVG drawn here, no script)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from controlplane.admin.guard import CurrentAdmin
from controlplane.admin.web import render
from controlplane.capacity import service
from controlplane.deps import DbDep

router = APIRouter()
WIDTH, HEIGHT = 600, 160


def chart(samples: list[dict[str, Any]], capacity: int) -> dict[str, Any]:
    """Points of the allocated-RAM line in a WIDTH x HEIGHT box; the top is the capacity."""
    top = max([capacity, *(s["allocated_ram_mb"] for s in samples)]) or 1
    n = len(samples)
    points = []
    for i, sample in enumerate(samples):
        x = WIDTH * (i / (n - 1) if n > 1 else 1.0)
        y = HEIGHT - HEIGHT * sample["allocated_ram_mb"] / top
        points.append(f"{x:.1f},{y:.1f}")
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "points": " ".join(points),
        "capacity_y": f"{HEIGHT - HEIGHT * capacity / top:.1f}",
        "first": samples[0]["day"] if samples else None,
        "last": samples[-1]["day"] if samples else None,
    }


@router.get("/capacity")
async def capacity_page(request: Request, db: DbDep, _: CurrentAdmin) -> Response:
    report = await service.capacity_report(db)
    return render(
        request,
        "capacity.html",
        {
            "nav": "capacity",
            "r": report,
            "chart": chart(report["samples"], report["cluster"]["ram"]["capacity_mb"]),
        },
    )
