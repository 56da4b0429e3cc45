"""`/api/v1/projects`: happy paths, invalid input, auth, conflicts, missing, one default."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import psycopg

from tests.conftest import flush_audit, wait_until_blocked

BODY = {"name": "Web app", "slug": "web", "template_vmid": 9000}


async def create(admin: httpx.AsyncClient, **overrides: object) -> dict:
    r = await admin.post("/api/v1/projects", json={**BODY, **overrides})
    assert r.status_code == 201, r.text
    return r.json()


async def test_create_get_list_update_delete(admin: httpx.AsyncClient, app: object) -> None:
    r = await admin.post(
        "/api/v1/projects",
        json={**BODY, "bootstrap_commands": ["apt-get update"], "health_path": "/up"},
    )
    assert r.status_code == 201, r.text
    project = r.json()
    assert r.headers["location"] == f"/api/v1/projects/{project['id']}"
    assert (project["ram_mb"], project["cores"], project["disk_gb"], project["app_port"]) == (
        512,
        1,
        8,
        8080,
    )
    assert project["bootstrap_commands"] == ["apt-get update"] and not project["is_default"]

    r = await admin.get(f"/api/v1/projects/{project['id']}")
    assert r.status_code == 200 and r.json() == project
    page = (await admin.get("/api/v1/projects", params={"limit": 1})).json()
    assert page["total"] == 1 and [p["id"] for p in page["items"]] == [project["id"]]

    r = await admin.put(
        f"/api/v1/projects/{project['id']}", json={"ram_mb": 2048, "health_path": None}
    )
    assert r.status_code == 200, r.text
    updated = r.json()
    assert updated["ram_mb"] == 2048 and updated["health_path"] is None
    assert updated["slug"] == "web" and updated["bootstrap_commands"] == ["apt-get update"]

    assert (await admin.delete(f"/api/v1/projects/{project['id']}")).status_code == 204
    assert (await admin.get(f"/api/v1/projects/{project['id']}")).status_code == 404
    await flush_audit(app)
    actions = [
        e["action"]
        for e in (await admin.get("/api/v1/audit", params={"target_type": "project"})).json()[
            "items"
        ]
    ]
    assert sorted(actions) == ["project.create", "project.delete", "project.update"]


async def test_invalid_input_names_the_field(admin: httpx.AsyncClient) -> None:
    cases = [
        ({**BODY, "slug": "Not A Slug"}, "slug"),
        ({**BODY, "template_vmid": 99}, "template_vmid"),
        ({**BODY, "ram_mb": 8}, "ram_mb"),
        ({**BODY, "health_path": "no-slash"}, "health_path"),
        ({**BODY, "bootstrap_commands": [""]}, "bootstrap_commands"),
        ({**BODY, "surprise": 1}, "surprise"),
        ({k: v for k, v in BODY.items() if k != "name"}, "name"),
    ]
    for body, field in cases:
        r = await admin.post("/api/v1/projects", json=body)
        assert r.status_code == 422, (body, r.text)
        assert field in r.json()["error"]["fields"][0]["field"], (body, r.text)
    project = await create(admin)
    r = await admin.put(f"/api/v1/projects/{project['id']}", json={"cores": 0})
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"].endswith("cores")
    assert (await admin.get("/api/v1/projects/not-a-uuid")).status_code == 422


async def test_unauthorised(client: httpx.AsyncClient) -> None:
    some_id = uuid.uuid4()
    for method, path in [
        ("GET", "/api/v1/projects"),
        ("POST", "/api/v1/projects"),
        ("GET", f"/api/v1/projects/{some_id}"),
        ("PUT", f"/api/v1/projects/{some_id}"),
        ("DELETE", f"/api/v1/projects/{some_id}"),
    ]:
        r = await client.request(method, path, json=BODY, headers={"Authorization": "Bearer no"})
        assert r.status_code == 401, (method, path, r.text)


async def test_missing_is_404(admin: httpx.AsyncClient) -> None:
    missing = uuid.uuid4()
    assert (await admin.get(f"/api/v1/projects/{missing}")).status_code == 404
    assert (await admin.put(f"/api/v1/projects/{missing}", json={"cores": 2})).status_code == 404
    assert (await admin.delete(f"/api/v1/projects/{missing}")).status_code == 404


async def test_conflicts(admin: httpx.AsyncClient) -> None:
    first = await create(admin, is_default=True)
    r = await admin.post("/api/v1/projects", json=BODY)
    assert r.status_code == 409 and r.json()["error"]["fields"][0]["field"] == "slug"
    second = await create(admin, slug="api", is_default=True)
    r = await admin.put(f"/api/v1/projects/{second['id']}", json={"slug": "web"})
    assert r.status_code == 409 and "'web'" in r.json()["error"]["message"]
    # At most one default: making another the default moves the flag.
    assert (await admin.get(f"/api/v1/projects/{first['id']}")).json()["is_default"] is False
    assert (await admin.get(f"/api/v1/projects/{second['id']}")).json()["is_default"] is True


async def test_delete_refused_while_tenants_live(admin: httpx.AsyncClient, app: object) -> None:
    project = await create(admin)
    db = app.state.cp.db  # type: ignore[attr-defined]
    await db.execute(
        "INSERT INTO tenants (id, name, subdomain, project_id, ram_mb, cores, status)"
        " VALUES (%(id)s, 't', 't1', %(p)s, 512, 1, 'active')",
        {"id": uuid.uuid4(), "p": project["id"]},
    )
    r = await admin.delete(f"/api/v1/projects/{project['id']}")
    assert r.status_code == 409 and "1 live tenant" in r.json()["error"]["message"]
    await db.execute("UPDATE tenants SET status = 'deleted'")
    assert (await admin.delete(f"/api/v1/projects/{project['id']}")).status_code == 204


async def test_delete_waits_for_a_tenant_insert_in_flight(
    admin: httpx.AsyncClient, app: object, database_url: str
) -> None:
    """A create that has inserted its tenant but not committed yet still blocks a delete."""
    project = await create(admin)
    db = app.state.cp.db  # type: ignore[attr-defined]
    async with await psycopg.AsyncConnection.connect(database_url) as creating:
        await creating.execute(
            "INSERT INTO tenants (id, name, subdomain, project_id, ram_mb, cores, status)"
            " VALUES (%s, 't', 't1', %s, 512, 1, 'provisioning')",
            (uuid.uuid4(), project["id"]),
        )
        delete = asyncio.create_task(admin.delete(f"/api/v1/projects/{project['id']}"))
        await wait_until_blocked(db, "FROM projects", "the delete")
        await creating.commit()
        r = await delete
    assert r.status_code == 409, r.text
    assert await db.fetch_val("SELECT count(*) FROM tenants WHERE project_id IS NULL") == 0


async def test_two_deletes_at_once_are_204_and_404(admin: httpx.AsyncClient) -> None:
    project = await create(admin)
    results = await asyncio.gather(
        *(admin.delete(f"/api/v1/projects/{project['id']}") for _ in range(2))
    )
    assert sorted(r.status_code for r in results) == [204, 404]
