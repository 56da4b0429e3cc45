"""Usage for people: which charts to draw from an archive's points, and the same figures as
text (latest, average, peak per measure, and every point), for the dashboard's pages and
for anyone who cannot see a chart."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from controlplane.usage.archives import TIMEFRAMES

MiB = 2**20
GiB = 2**30


@dataclass(frozen=True)
class Series:
    key: str  # the data source
    label: str
    scale: float  # stored value x scale = the value in the chart's unit


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    unit: str
    series: tuple[Series, ...]


CHARTS: dict[str, tuple[Chart, ...]] = {
    "tenant": (
        Chart("cpu", "CPU", "%", (Series("cpu", "CPU", 100.0),)),
        Chart(
            "mem",
            "Memory",
            "MiB",
            (Series("mem", "Used", 1 / MiB), Series("maxmem", "Limit", 1 / MiB)),
        ),
        Chart(
            "net",
            "Network",
            "KiB/s",
            (Series("netin", "In", 1 / 1024), Series("netout", "Out", 1 / 1024)),
        ),
        Chart(
            "disk",
            "Disk",
            "KiB/s",
            (Series("diskread", "Read", 1 / 1024), Series("diskwrite", "Write", 1 / 1024)),
        ),
    ),
    "node": (
        Chart("cpu", "CPU", "%", (Series("cpu", "CPU", 100.0), Series("iowait", "IO wait", 100.0))),
        Chart("load", "Load average", "", (Series("loadavg", "Load", 1.0),)),
        Chart(
            "mem",
            "Memory",
            "GiB",
            (Series("memused", "Used", 1 / GiB), Series("memtotal", "Total", 1 / GiB)),
        ),
        Chart(
            "net",
            "Network",
            "KiB/s",
            (Series("netin", "In", 1 / 1024), Series("netout", "Out", 1 / 1024)),
        ),
    ),
}


def _fmt(value: float | None) -> str:
    if value is None:
        return "\N{EN DASH}"
    return f"{value:,.2f}" if abs(value) < 10 else f"{value:,.0f}"


def _values(points: list[dict[str, Any]], s: Series) -> list[float]:
    return [p[s.key] * s.scale for p in points if p.get(s.key) is not None]


def _heading(chart: Chart, s: Series) -> str:
    name = f"{chart.title}: {s.label}" if len(chart.series) > 1 else chart.title
    return f"{name} ({chart.unit})" if chart.unit else name


def usage_view(kind: str, usage: dict[str, Any]) -> dict[str, Any]:
    """What the dashboard's usage partial renders from a service answer."""
    charts = CHARTS[kind]
    points: list[dict[str, Any]] = usage["points"]
    summary = []
    for chart in charts:
        for s in chart.series:
            values = _values(points, s)
            summary.append(
                {
                    "label": _heading(chart, s),
                    "latest": _fmt(values[-1] if values else None),
                    "mean": _fmt(sum(values) / len(values) if values else None),
                    "peak": _fmt(max(values) if values else None),
                }
            )
    columns = [(chart, s) for chart in charts for s in chart.series]
    rows = [
        {
            "time": datetime.fromtimestamp(p["time"], UTC).strftime("%Y-%m-%d %H:%M"),
            "values": [
                _fmt(None if p.get(s.key) is None else p[s.key] * s.scale) for _, s in columns
            ],
        }
        for p in points
    ]
    return {
        **usage,
        "kind": kind,
        "timeframes": TIMEFRAMES,
        "charts": charts,
        "summary": summary,
        "columns": [_heading(c, s) for c, s in columns],
        "rows": rows,
        # For the charts' script: plain JSON (read from a data block, never executed).
        "chart_data": {
            "charts": [asdict(c) for c in charts],
            "points": [{k: v for k, v in p.items() if v is not None} for p in points],
        },
    }
