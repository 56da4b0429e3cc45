"""`/api/v1/tenants`: recording intent, placement, RAM reservation, the state machine."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from tests.conftest import SimHandle, wait_until_blocked


async def _online_node(
    admin: httpx.AsyncClient,
    app: object,
    sim: SimHandle,
    *,
    name: str = "pve-a",
    ram: int = 32768,
    templates=(9000,),
) -> dict:
    r = await admin.post("/api/v1/nodes", json=sim.node_body("pve1", name=name, total_ram_mb=ram))
    assert r.status_code == 201, r.text
    node = r.json()
    db = app.state.cp.db  # type: ignore[attr-defined]
    await db.execute(
        "UPDATE nodes SET status = 'online', templates = %(t)s WHERE id = %(id)s",
        {"id": node["id"], "t": list(templates)},
    )
    return node


async def _project(admin: httpx.AsyncClient, **kw) -> dict:
    body = {"name": "Web", "slug": "web", "template_vmid": 9000, "ram_mb": 1024, **kw}
    r = await admin.post("/api/v1/projects", json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def test_create_records_intent(
    admin: httpx.AsyncClient, app: object, pve_sim: SimHandle
) -> None:
    node = await _online_node(admin, app, pve_sim)
    project = await _project(admin)
    r = await admin.post("/api/v1/tenants", json={"project_id": project["id"], "subdomain": "acme"})
    assert r.status_code == 202, r.text
    t = r.json()
    assert r.headers["location"] == f"/api/v1/tenants/{t['id']}"
    assert t["status"] == "provisioning" and t["node_id"] == node["id"] and t["vmid"] == 10000
    assert t["ram_mb"] == 1024
    n = (await admin.get(f"/api/v1/nodes/{node['id']}")).json()
    assert n["allocated_ram_mb"] == 1024
    r = await admin.get("/api/v1/tenants", params={"status": "provisioning"})
    assert r.json()["total"] == 1
    r = await admin.get(f"/api/v1/tenants/{t['id']}")
    assert r.status_code == 200 and r.json()["command_output"] == []


async def test_invalid_and_conflicting_creates(
    admin: httpx.AsyncClient, app: object, pve_sim: SimHandle
) -> None:
    await _online_node(admin, app, pve_sim)
    project = await _project(admin)
    for sub in ("www", "Bad_Label", "-x", "a" * 64, "ünï", "xn--pple-43d"):
        r = await admin.post(
            "/api/v1/tenants", json={"project_id": project["id"], "subdomain": sub}
        )
        assert r.status_code == 422, (sub, r.text)
        assert r.json()["error"]["fields"][0]["field"] == "subdomain"
    r = await admin.post(
        "/api/v1/tenants", json={"project_id": str(uuid.uuid4()), "subdomain": "ok"}
    )
    assert r.status_code == 404 and r.json()["error"]["fields"][0]["field"] == "project_id"
    assert (
        await admin.post("/api/v1/tenants", json={"project_id": project["id"], "subdomain": "dup"})
    ).status_code == 202
    r = await admin.post("/api/v1/tenants", json={"project_id": project["id"], "subdomain": "dup"})
    assert r.status_code == 409 and "taken" in r.json()["error"]["message"]


async def test_no_room_is_409(admin: httpx.AsyncClient, app: object, pve_sim: SimHandle) -> None:
    await _online_node(admin, app, pve_sim, ram=1024)
    project = await _project(admin, ram_mb=1024)
    assert (
        await admin.post("/api/v1/tenants", json={"project_id": project["id"], "subdomain": "a"})
    ).status_code == 202
    r = await admin.post("/api/v1/tenants", json={"project_id": project["id"], "subdomain": "b"})
    assert r.status_code == 409 and "no room" in r.json()["error"]["message"]


async def test_placement_prefers_most_free_ram_and_template(
    admin: httpx.AsyncClient, app: object, pve_sim: SimHandle
) -> None:
    small = await _online_node(admin, app, pve_sim, name="small", ram=4096)
    big = await _online_node(admin, app, pve_sim, name="big", ram=65536)
    await _online_node(admin, app, pve_sim, name="notemplate", ram=999999, templates=(9001,))
    project = await _project(admin)
    r = await admin.post("/api/v1/tenants", json={"project_id": project["id"], "subdomain": "a"})
    assert r.json()["node_id"] == big["id"]
    r = await admin.post(
        "/api/v1/tenants",
        json={"project_id": project["id"], "subdomain": "b", "node_id": small["id"]},
    )
    assert r.status_code == 202 and r.json()["node_id"] == small["id"]


async def test_hundred_concurrent_creates_never_overallocate(
    admin: httpx.AsyncClient, app: object, pve_sim: SimHandle
) -> None:
    node = await _online_node(admin, app, pve_sim, ram=30 * 512)
    project = await _project(admin, ram_mb=512)
    results = await asyncio.gather(
        *[
            admin.post("/api/v1/tenants", json={"project_id": project["id"], "subdomain": f"t{i}"})
            for i in range(100)
        ]
    )
    codes = sorted(r.status_code for r in results)
    assert codes.count(202) == 30 and codes.count(409) == 70, codes
    n = (await admin.get(f"/api/v1/nodes/{node['id']}")).json()
    assert n["allocated_ram_mb"] == 30 * 512
    vmids = {r.json()["vmid"] for r in results if r.status_code == 202}
    assert len(vmids) == 30


async def test_transitions_are_compare_and_swap(
    admin: httpx.AsyncClient, app: object, pve_sim: SimHandle
) -> None:
    await _online_node(admin, app, pve_sim)
    project = await _project(admin)
    t = (
        await admin.post("/api/v1/tenants", json={"project_id": project["id"], "subdomain": "a"})
    ).json()
    r = await admin.post(f"/api/v1/tenants/{t['id']}/suspend")
    assert r.status_code == 409 and "it is provisioning" in r.json()["error"]["message"]
    db = app.state.cp.db  # type: ignore[attr-defined]
    await db.execute("UPDATE tenants SET status = 'active' WHERE id = %(id)s", {"id": t["id"]})
    a, b = await asyncio.gather(
        *[admin.post(f"/api/v1/tenants/{t['id']}/suspend") for _ in range(2)]
    )
    assert sorted([a.status_code, b.status_code]) == [202, 409]
    assert (await admin.post(f"/api/v1/tenants/{t['id']}/retry")).status_code == 409
    assert (await admin.post(f"/api/v1/tenants/{uuid.uuid4()}/resume")).status_code == 404


async def test_resize_reserves_atomically(
    admin: httpx.AsyncClient, app: object, pve_sim: SimHandle
) -> None:
    node = await _online_node(admin, app, pve_sim, ram=2048)
    project = await _project(admin, ram_mb=1024)
    t = (
        await admin.post("/api/v1/tenants", json={"project_id": project["id"], "subdomain": "a"})
    ).json()
    r = await admin.put(f"/api/v1/tenants/{t['id']}", json={"ram_mb": 4096})
    assert r.status_code == 409
    r = await admin.put(
        f"/api/v1/tenants/{t['id']}", json={"ram_mb": 2048, "cores": 2, "name": "Acme"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["ram_mb"] == 2048 and r.json()["config_pending"] and r.json()["name"] == "Acme"
    assert (await admin.get(f"/api/v1/nodes/{node['id']}")).json()["allocated_ram_mb"] == 2048
    assert (
        await admin.put(f"/api/v1/tenants/{t['id']}", json={"ram_mb": "big"})
    ).status_code == 422


async def test_ram_overcommit_scales_reservation_placement_and_resize(
    admin: httpx.AsyncClient, app: object, pve_sim: SimHandle
) -> None:
    db = app.state.cp.db  # type: ignore[attr-defined]
    small = await _online_node(admin, app, pve_sim, name="small", ram=1024)
    big = await _online_node(admin, app, pve_sim, name="big", ram=1536)
    project = await _project(admin, ram_mb=1024)

    async def create(sub: str, **body: object) -> httpx.Response:
        return await admin.post(
            "/api/v1/tenants", json={"project_id": project["id"], "subdomain": sub, **body}
        )

    assert (await create("a", node_id=small["id"])).status_code == 202
    assert (await create("b", node_id=small["id"])).status_code == 409  # 2048 > 1024 x 1.0
    await db.execute("UPDATE system_settings SET value = '2.0' WHERE key = 'ram_overcommit'")
    assert (await create("b", node_id=small["id"])).status_code == 202  # 2048 <= 1024 x 2.0
    c = await create("c")  # small is full at 2048 of 2048: placement picks big (3072)
    assert c.status_code == 202 and c.json()["node_id"] == big["id"]
    resized = await admin.put(f"/api/v1/tenants/{c.json()['id']}", json={"ram_mb": 3072})
    assert resized.status_code == 200, resized.text
    # Without the setting the factor is 1.0: nothing fits anywhere any more.
    await db.execute("DELETE FROM system_settings WHERE key = 'ram_overcommit'")
    assert (await create("d")).status_code == 409
    assert await db.fetch_val("SELECT node_ram_capacity_mb(1536)") == 1536.0


def test_the_overcommit_is_read_by_the_sql_function_only() -> None:
    from pathlib import Path

    package = Path(__file__).resolve().parents[2] / "src" / "controlplane"
    readers = [
        str(path.relative_to(package))
        for path in package.rglob("*.sql")
        if "key = 'ram_overcommit'" in path.read_text()
    ]
    assert readers == ["db/migrations/0007_ram_capacity.sql"]


async def test_unauthorised(client: httpx.AsyncClient) -> None:
    tid = uuid.uuid4()
    for method, path in [
        ("GET", "/api/v1/tenants"),
        ("POST", "/api/v1/tenants"),
        ("GET", f"/api/v1/tenants/{tid}"),
        ("PUT", f"/api/v1/tenants/{tid}"),
        ("DELETE", f"/api/v1/tenants/{tid}"),
        ("POST", f"/api/v1/tenants/{tid}/suspend"),
        ("POST", f"/api/v1/tenants/{tid}/retry"),
    ]:
        assert (await client.request(method, path)).status_code == 401, (method, path)


async def test_resume_only_by_whoever_suspended(
    admin: httpx.AsyncClient, app: object, pve_sim: SimHandle
) -> None:
    from controlplane.tenants import service

    await _online_node(admin, app, pve_sim)
    project = await _project(admin)
    t = (
        await admin.post("/api/v1/tenants", json={"project_id": project["id"], "subdomain": "s1"})
    ).json()
    db = app.state.cp.db  # type: ignore[attr-defined]
    await db.execute("UPDATE tenants SET status = 'active' WHERE id = %(id)s", {"id": t["id"]})
    await service.request_suspend(db, t["id"], by="billing")
    await db.execute("UPDATE tenants SET status = 'suspended' WHERE id = %(id)s", {"id": t["id"]})
    try:
        await service.request_resume(db, t["id"], by="user")
        raise AssertionError("a user resumed a tenant that billing suspended")
    except service.Conflict as exc:
        assert "suspended by billing" in exc.message
    r = await admin.post(f"/api/v1/tenants/{t['id']}/resume")
    assert r.status_code == 202 and r.json()["status"] == "resuming"


async def test_unknown_owner_is_404(
    admin: httpx.AsyncClient, app: object, pve_sim: SimHandle
) -> None:
    await _online_node(admin, app, pve_sim)
    project = await _project(admin)
    r = await admin.post(
        "/api/v1/tenants",
        json={"project_id": project["id"], "subdomain": "o", "owner_user_id": str(uuid.uuid4())},
    )
    assert r.status_code == 404 and r.json()["error"]["fields"][0]["field"] == "owner_user_id"
    assert (
        await admin.get(
            f"/api/v1/nodes/{(await admin.get('/api/v1/nodes')).json()['items'][0]['id']}"
        )
    ).json()["allocated_ram_mb"] == 0


async def test_create_for_a_project_deleted_meanwhile_is_404(
    admin: httpx.AsyncClient, app: object, pve_sim: SimHandle, database_url: str
) -> None:
    """The project goes away between the create's lookup and its insert: 404, nothing kept."""
    import psycopg

    node = await _online_node(admin, app, pve_sim)
    project = await _project(admin)
    db = app.state.cp.db  # type: ignore[attr-defined]
    async with await psycopg.AsyncConnection.connect(database_url) as deleting:
        await deleting.execute("DELETE FROM projects WHERE id = %s", (project["id"],))
        create = asyncio.create_task(
            admin.post("/api/v1/tenants", json={"project_id": project["id"], "subdomain": "acme"})
        )
        await wait_until_blocked(db, "", "the create")
        await deleting.commit()
        r = await create
    assert r.status_code == 404, r.text
    assert r.json()["error"]["fields"][0]["field"] == "project_id"
    assert await db.fetch_val("SELECT count(*) FROM tenants") == 0
    assert (await admin.get(f"/api/v1/nodes/{node['id']}")).json()["allocated_ram_mb"] == 0


async def test_list_items_match_the_model_and_the_detail(
    admin: httpx.AsyncClient, app: object, pve_sim: SimHandle
) -> None:
    """The list sends PostgreSQL's JSON unvalidated: it must be TenantPublic, field for field."""
    from pydantic import TypeAdapter

    from controlplane.tenants.schemas import TenantPublic
    from controlplane.web.pagination import Page

    await _online_node(admin, app, pve_sim)
    project = await _project(admin)
    ids = []
    for sub in ("full", "bare"):
        r = await admin.post(
            "/api/v1/tenants", json={"project_id": project["id"], "subdomain": sub}
        )
        ids.append(r.json()["id"])
    db = app.state.cp.db  # type: ignore[attr-defined]
    await db.execute(  # every nullable field filled on one tenant, none on the other
        "UPDATE tenants SET ip_address = '10.0.0.7', step = 'route', last_error = 'x',"
        " error_step = 'clone', health = 'ok', observed = '{\"pve_status\": \"running\"}',"
        " observed_at = now() - interval '1 second', deleted_at = now(), owner_user_id = NULL,"
        " status = 'deleted' WHERE id = %(id)s",
        {"id": ids[0]},
    )
    r = await admin.get("/api/v1/tenants", params={"include_deleted": "true"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    page = r.json()
    TypeAdapter(Page[TenantPublic]).validate_python(page, strict=False)
    assert page["total"] == 2 and len(page["items"]) == 2
    for item in page["items"]:
        assert set(item) == set(TenantPublic.model_fields)
        detail = (await admin.get(f"/api/v1/tenants/{item['id']}")).json()
        assert item == {key: detail[key] for key in TenantPublic.model_fields}
