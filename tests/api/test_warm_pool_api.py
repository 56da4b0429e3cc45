"""`warm_pool_size` on projects and `GET /api/v1/projects/{id}/spares`: the happy path, the
refusals (negative, too large, wrong type, unknown project, no or wrong token), the audit."""

from __future__ import annotations

import uuid

import httpx

from tests.conftest import flush_audit

BODY = {"name": "Web app", "slug": "web", "template_vmid": 9000}


async def test_size_set_read_and_audited(admin: httpx.AsyncClient, app: object) -> None:
    r = await admin.post("/api/v1/projects", json=BODY)
    assert r.status_code == 201 and r.json()["warm_pool_size"] == 0
    project = r.json()
    r = await admin.put(f"/api/v1/projects/{project['id']}", json={"warm_pool_size": 3})
    assert r.status_code == 200 and r.json()["warm_pool_size"] == 3
    assert (await admin.get(f"/api/v1/projects/{project['id']}")).json()["warm_pool_size"] == 3
    # Other changes leave it alone.
    r = await admin.put(f"/api/v1/projects/{project['id']}", json={"ram_mb": 256})
    assert r.json()["warm_pool_size"] == 3
    r = await admin.get(f"/api/v1/projects/{project['id']}/spares")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "project_id": project["id"],
        "warm_pool_size": 3,
        "ready": 0,
        "building": 0,
        "retiring": 0,
        "items": [],
    }
    await flush_audit(app)
    entries = (
        await admin.get(
            "/api/v1/audit", params={"target_type": "project", "action": "project.update"}
        )
    ).json()["items"]
    assert {"warm_pool_size": 3} in [e["details"] for e in entries]
    r = await admin.post("/api/v1/projects", json={**BODY, "slug": "big", "warm_pool_size": 20})
    assert r.status_code == 201 and r.json()["warm_pool_size"] == 20


async def test_refusals(admin: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    for bad in (-1, 21, "2", 1.5, None):
        r = await admin.post("/api/v1/projects", json={**BODY, "warm_pool_size": bad})
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["error"]["fields"][0]["field"].endswith("warm_pool_size")
    project = (await admin.post("/api/v1/projects", json=BODY)).json()
    for bad in (-1, 21, "2"):
        r = await admin.put(f"/api/v1/projects/{project['id']}", json={"warm_pool_size": bad})
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["error"]["fields"][0]["field"].endswith("warm_pool_size")
    assert (await admin.get(f"/api/v1/projects/{project['id']}")).json()["warm_pool_size"] == 0
    missing = uuid.uuid4()
    r = await admin.put(f"/api/v1/projects/{missing}", json={"warm_pool_size": 1})
    assert r.status_code == 404
    r = await admin.get(f"/api/v1/projects/{missing}/spares")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert (await admin.get("/api/v1/projects/not-a-uuid/spares")).status_code == 422
    assert (await client.get(f"/api/v1/projects/{project['id']}/spares")).status_code == 401
    r = await client.get(
        f"/api/v1/projects/{project['id']}/spares", headers={"Authorization": "Bearer wrong"}
    )
    assert r.status_code == 401
    r = await client.put(f"/api/v1/projects/{project['id']}", json={"warm_pool_size": 2})
    assert r.status_code == 401
