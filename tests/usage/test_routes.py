"""The usage routes: owner, admin and operator reads, and their refusals. A read never
calls Proxmox: it answers from what the collector stored, even with Proxmox down."""

from __future__ import annotations

import uuid

import httpx

from tests.provisioner.conftest import Plane
from tests.usage.conftest import active_tenants, collector, user_headers


async def _owned(plane: Plane, anon: httpx.AsyncClient) -> tuple[dict, dict[str, str]]:
    owner_id, ada = await user_headers(anon, "ada@example.com")
    (t,) = await active_tenants(plane, "alpha")
    await plane.db.execute(
        "UPDATE tenants SET owner_user_id = %(o)s WHERE id = %(id)s", {"o": owner_id, "id": t["id"]}
    )
    return t, ada


async def test_owner_admin_and_operator_read_without_calling_proxmox(
    plane: Plane, anon: httpx.AsyncClient
) -> None:
    t, ada = await _owned(plane, anon)
    c, _ = collector(plane)
    await c.collect_once()
    plane.sim.sim.faults.update({"http_5xx_rate": 1.0})  # type: ignore[attr-defined]
    mine = await anon.get(f"/api/v1/user/tenants/{t['id']}/metrics", headers=ada)
    assert mine.status_code == 200, mine.text
    body = mine.json()
    assert body["timeframe"] == "hour" and body["step_s"] == 60 and body["read_at"]
    points = body["points"]
    assert len(points) >= 60
    assert [p["time"] for p in points] == sorted(p["time"] for p in points)
    assert all(p["time"] % 60 == 0 for p in points)
    assert {"cpu", "mem", "maxmem", "netin", "netout", "diskread", "diskwrite"} <= set(points[-1])
    admin = await plane.admin.get(
        f"/api/v1/tenants/{t['id']}/metrics", params={"timeframe": "hour"}
    )
    assert admin.status_code == 200 and admin.json() == body
    node = await plane.admin.get(f"/api/v1/nodes/{t['node_id']}/metrics")
    assert node.status_code == 200, node.text
    npoints = node.json()["points"]
    assert npoints and {"cpu", "memused", "memtotal", "loadavg", "netin"} <= set(npoints[-1])
    # An archive not read yet: no points, and says so.
    day = await plane.admin.get(f"/api/v1/tenants/{t['id']}/metrics", params={"timeframe": "day"})
    assert day.status_code == 200 and day.json()["points"] == [] and day.json()["read_at"] is None
    assert day.json()["step_s"] == 1800


async def test_refusals(plane: Plane, anon: httpx.AsyncClient) -> None:
    t, ada = await _owned(plane, anon)
    _, bob = await user_headers(anon, "bob@example.com")
    user_path = f"/api/v1/user/tenants/{t['id']}/metrics"
    # Someone else's tenant, or one that does not exist: 404, never 403.
    for path, headers in (
        (user_path, bob),
        (f"/api/v1/user/tenants/{uuid.uuid4()}/metrics", ada),
    ):
        r = await anon.get(path, headers=headers)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", r.text
    for path in (
        f"/api/v1/tenants/{uuid.uuid4()}/metrics",
        f"/api/v1/nodes/{uuid.uuid4()}/metrics",
    ):
        r = await plane.admin.get(path)
        assert r.status_code == 404, r.text
    # No credentials: 401; a user's token on an operator's route: 403.
    for path in (
        user_path,
        f"/api/v1/tenants/{t['id']}/metrics",
        f"/api/v1/nodes/{t['node_id']}/metrics",
    ):
        assert (await anon.get(path)).status_code == 401
    for path in (f"/api/v1/tenants/{t['id']}/metrics", f"/api/v1/nodes/{t['node_id']}/metrics"):
        assert (await anon.get(path, headers=ada)).status_code == 403
    # A bad timeframe (year is Proxmox's, not kept here) or id: 422 naming the field.
    for params, field in (({"timeframe": "year"}, "timeframe"), ({"timeframe": ""}, "timeframe")):
        r = await anon.get(user_path, headers=ada, params=params)
        assert r.status_code == 422, r.text
        assert field in [f["field"] for f in r.json()["error"]["fields"]]
        r = await plane.admin.get(f"/api/v1/nodes/{t['node_id']}/metrics", params=params)
        assert r.status_code == 422
    r = await plane.admin.get("/api/v1/tenants/not-a-uuid/metrics")
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "tenant_id"
