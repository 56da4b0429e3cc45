"""The dashboard's usage graphs: a tenant's page and a node's page carry the charts' data,
the text summary and the table, and load uPlot from the dashboard's own static files."""

from __future__ import annotations

import json
import re
import uuid

from tests.admin.conftest import Browser
from tests.provisioner.conftest import Plane
from tests.usage.conftest import active_tenants, collector


def _chart_data(html: str) -> dict:
    match = re.search(
        r'<script type="application/json" class="usage-data">(.*?)</script>', html, re.S
    )
    assert match, "no chart data on the page"
    return json.loads(match.group(1))


async def test_tenant_and_node_pages_show_usage(plane: Plane, dash: Browser) -> None:
    (t,) = await active_tenants(plane, "alpha")
    plane.sim.sim.set_load(t["vmid"], cpu=0.5)  # type: ignore[attr-defined]
    c, _ = collector(plane)
    await c.collect_once()
    r = await dash.open(f"/admin/tenants/{t['id']}")
    assert r.status_code == 200, r.text
    data = _chart_data(r.text)
    assert [c["id"] for c in data["charts"]] == ["cpu", "mem", "net", "disk"]
    assert len(data["points"]) >= 60 and all("cpu" in p for p in data["points"])
    assert '<script src="/admin/static/uPlot.iife.min.js" defer></script>' in r.text
    assert "<caption>Usage over the last hour</caption>" in r.text
    # The text alternative: the CPU row says its peak near the load (50 % of its core).
    row = re.search(r'<th scope="row">CPU \(%\)</th><td class="num">[^<]*</td><td class="num">[^<]*</td>'
                    r'<td class="num">([^<]*)</td>', r.text)  # fmt: skip
    assert row and 35 <= float(row.group(1)) <= 65, row and row.group(0)
    assert r.text.count('<tr><th scope="row">20') >= 60  # every point, with its time
    # Another archive: not read yet, and the page says so instead of drawing nothing.
    r = await dash.open(f"/admin/tenants/{t['id']}", params={"timeframe": "week"})
    assert r.status_code == 200 and "No usage recorded for this week yet" in r.text
    assert 'aria-current="page">week</a>' in r.text
    r = await dash.open(f"/admin/tenants/{t['id']}", params={"timeframe": "<script>"})
    assert r.status_code == 200 and "<caption>Usage over the last hour</caption>" in r.text

    r = await dash.open(f"/admin/nodes/{t['node_id']}")
    assert r.status_code == 200, r.text
    data = _chart_data(r.text)
    assert [c["id"] for c in data["charts"]] == ["cpu", "load", "mem", "net"]
    assert data["points"] and "memused" in data["points"][-1]
    r = await dash.open("/admin/nodes")
    assert f'href="/admin/nodes/{t["node_id"]}"' in r.text
    r = await dash.open(f"/admin/nodes/{uuid.uuid4()}")
    assert r.status_code == 404


async def test_the_chart_script_and_uplot_are_served_from_the_dashboard(dash: Browser) -> None:
    for path in ("uPlot.iife.min.js", "usage.js", "uPlot.min.css"):
        r = await dash.http.get(f"/admin/static/{path}")
        assert r.status_code == 200 and len(r.content) > 500, path
