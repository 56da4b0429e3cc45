"""`/api/v1/nodes`: happy paths, invalid input, auth, conflicts, missing, secrets hidden."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.conftest import PVE_TOKEN_SECRET, SimHandle, flush_audit, wait_until_blocked


@pytest.fixture
def node_body(pve_sim: SimHandle) -> dict:
    return pve_sim.node_body("pve1", name="pve-a", total_ram_mb=32768)


async def test_create_get_list_update_delete(
    node_body: dict, admin: httpx.AsyncClient, app: object
) -> None:
    r = await admin.post("/api/v1/nodes", json=node_body)
    assert r.status_code == 201, r.text
    node = r.json()
    assert r.headers["location"] == f"/api/v1/nodes/{node['id']}"
    assert node["allocated_ram_mb"] == 0
    assert node["status"] == "online"
    assert "token_secret" not in node and PVE_TOKEN_SECRET not in r.text

    r = await admin.get(f"/api/v1/nodes/{node['id']}")
    assert r.status_code == 200 and r.json()["name"] == "pve-a"

    r = await admin.get("/api/v1/nodes", params={"limit": 1})
    assert r.status_code == 200
    page = r.json()
    assert page["total"] == 1 and page["limit"] == 1 and len(page["items"]) == 1

    r = await admin.put(
        f"/api/v1/nodes/{node['id']}",
        json={"total_ram_mb": 65536, "token_secret": PVE_TOKEN_SECRET},
    )
    assert r.status_code == 200, r.text
    assert r.json()["total_ram_mb"] == 65536
    assert PVE_TOKEN_SECRET not in r.text

    r = await admin.delete(f"/api/v1/nodes/{node['id']}")
    assert r.status_code == 204
    r = await admin.get(f"/api/v1/nodes/{node['id']}")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"

    await flush_audit(app)
    r = await admin.get("/api/v1/audit", params={"target_type": "node"})
    actions = [e["action"] for e in r.json()["items"]]
    assert actions == ["node.delete", "node.update", "node.create"]
    assert PVE_TOKEN_SECRET not in r.text


async def test_token_secret_is_sealed_at_rest(
    node_body: dict, admin: httpx.AsyncClient, app: object
) -> None:
    r = await admin.post("/api/v1/nodes", json=node_body)
    db = app.state.cp.db  # type: ignore[attr-defined]
    row = await db.fetch_one(
        "SELECT token_secret_sealed FROM nodes WHERE id = %(id)s", {"id": r.json()["id"]}
    )
    assert row["token_secret_sealed"].startswith("v1:")
    assert PVE_TOKEN_SECRET not in row["token_secret_sealed"]


async def test_invalid_input_names_the_field(node_body: dict, admin: httpx.AsyncClient) -> None:
    cases = [
        ({**node_body, "name": "Bad Name!"}, "name"),
        ({**node_body, "api_url": "ftp://x"}, "api_url"),
        ({**node_body, "token_id": "no-bang"}, "token_id"),
        ({**node_body, "total_ram_mb": "lots"}, "total_ram_mb"),
        ({**node_body, "tls_fingerprint": "zz"}, "tls_fingerprint"),
        ({**node_body, "allocated_ram_mb": 5}, "allocated_ram_mb"),
        ({k: v for k, v in node_body.items() if k != "token_secret"}, "token_secret"),
    ]
    for body, field in cases:
        r = await admin.post("/api/v1/nodes", json=body)
        assert r.status_code == 422, (field, r.text)
        assert field in [f["field"] for f in r.json()["error"]["fields"]], r.text
    r = await admin.post(
        "/api/v1/nodes", json={**node_body, "vmid_range_start": 20000, "vmid_range_end": 10000}
    )
    assert r.status_code == 422
    r = await admin.post(
        "/api/v1/nodes", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "bad_json"


async def test_unauthorised(client: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/api/v1/nodes"),
        ("POST", "/api/v1/nodes"),
        ("GET", f"/api/v1/nodes/{uuid.uuid4()}"),
        ("PUT", f"/api/v1/nodes/{uuid.uuid4()}"),
        ("DELETE", f"/api/v1/nodes/{uuid.uuid4()}"),
    ]:
        r = await client.request(method, path, json={})
        assert r.status_code == 401, (method, path)
        assert r.headers["www-authenticate"].startswith("Bearer")
    r = await client.get(
        "/api/v1/nodes", headers={"Authorization": "Bearer wrong-token-wrong-token"}
    )
    assert r.status_code == 401


async def test_name_conflict_and_missing(node_body: dict, admin: httpx.AsyncClient) -> None:
    assert (await admin.post("/api/v1/nodes", json=node_body)).status_code == 201
    r = await admin.post("/api/v1/nodes", json=node_body)
    assert r.status_code == 409
    assert r.json()["error"]["fields"][0]["field"] == "name"
    missing = uuid.uuid4()
    assert (
        await admin.put(f"/api/v1/nodes/{missing}", json={"total_ram_mb": 1024})
    ).status_code == 404
    assert (await admin.delete(f"/api/v1/nodes/{missing}")).status_code == 404
    assert (await admin.get("/api/v1/nodes/not-a-uuid")).status_code == 422


async def test_delete_refused_while_tenants_live(
    node_body: dict, admin: httpx.AsyncClient, app: object
) -> None:
    node = (await admin.post("/api/v1/nodes", json=node_body)).json()
    project = (
        await admin.post("/api/v1/projects", json={"name": "P", "slug": "p", "template_vmid": 9000})
    ).json()
    db = app.state.cp.db  # type: ignore[attr-defined]
    await db.execute(
        "INSERT INTO tenants (id, name, subdomain, project_id, node_id, ram_mb, cores, status)"
        " VALUES (%(id)s, 't', 't1', %(p)s, %(n)s, 512, 1, 'active')",
        {"id": uuid.uuid4(), "p": project["id"], "n": node["id"]},
    )
    r = await admin.delete(f"/api/v1/nodes/{node['id']}")
    assert r.status_code == 409
    assert "1 live tenant" in r.json()["error"]["message"]
    await db.execute("UPDATE tenants SET status = 'deleted'")
    assert (await admin.delete(f"/api/v1/nodes/{node['id']}")).status_code == 204


async def test_registration_checks_proxmox(admin: httpx.AsyncClient, pve_sim: SimHandle) -> None:
    r = await admin.post("/api/v1/nodes", json=pve_sim.node_body("pve2"))
    assert r.status_code == 201, r.text
    node = r.json()
    assert node["status"] == "online" and node["templates"] == [9001]
    assert node["total_ram_mb"] > 0 and node["pve_version"]
    cases = [
        (pve_sim.node_body("pve1", name="x1", token_secret="wrong-secret"), "token_id"),
        (pve_sim.node_body("nosuch", name="x2"), "pve_node"),
        (pve_sim.node_body("pve1", name="x3", api_url="http://127.0.0.1:1"), "api_url"),
    ]
    for body, field in cases:
        r = await admin.post("/api/v1/nodes", json=body)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["fields"][0]["field"] == field, r.text
        assert "wrong-secret" not in r.text
    r = await admin.put(f"/api/v1/nodes/{node['id']}", json={"token_secret": "wrong-secret"})
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "token_id"


async def test_secrets_never_reach_log_lines(
    node_body: dict, admin: httpx.AsyncClient, app: object, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from controlplane.web.logs import JsonFormatter

    ssh_key = "-----BEGIN OPENSSH PRIVATE KEY-----\nsecret-key-material-xyz\n-----END OPENSSH PRIVATE KEY-----"
    with caplog.at_level(logging.DEBUG):
        r = await admin.post("/api/v1/nodes", json={**node_body, "ssh_private_key": ssh_key})
        node = r.json()
        await admin.put(f"/api/v1/nodes/{node['id']}", json={"token_secret": "wrong-secret-abc"})
        await admin.get("/api/v1/nodes")
        await flush_audit(app)
    formatter = JsonFormatter()
    text = "\n".join(formatter.format(record) for record in caplog.records)
    assert caplog.records  # the requests were logged
    for secret in (PVE_TOKEN_SECRET, "secret-key-material-xyz", "wrong-secret-abc"):
        assert secret not in text
        assert secret not in r.text
    rows = await app.state.cp.db.fetch_all("SELECT details::text AS d FROM audit_log")  # type: ignore[attr-defined]
    assert rows and not any(
        PVE_TOKEN_SECRET in row["d"] or "secret-key-material" in row["d"] for row in rows
    )


async def test_delete_waits_for_a_placement_in_flight(
    node_body: dict, admin: httpx.AsyncClient, app: object, database_url: str
) -> None:
    """A create that has reserved RAM on the node but not committed yet still blocks a delete."""
    import asyncio

    import psycopg

    node = (await admin.post("/api/v1/nodes", json=node_body)).json()
    project = (
        await admin.post("/api/v1/projects", json={"name": "P", "slug": "p", "template_vmid": 9000})
    ).json()
    db = app.state.cp.db  # type: ignore[attr-defined]
    async with await psycopg.AsyncConnection.connect(database_url) as placement:
        # What create_tenant does in its transaction, held open: reserve, then insert.
        await placement.execute(
            "UPDATE nodes SET allocated_ram_mb = allocated_ram_mb + 512 WHERE id = %s",
            (node["id"],),
        )
        await placement.execute(
            "INSERT INTO tenants (id, name, subdomain, project_id, node_id, ram_mb, cores,"
            " status) VALUES (%s, 't', 't1', %s, %s, 512, 1, 'provisioning')",
            (uuid.uuid4(), project["id"], node["id"]),
        )
        delete = asyncio.create_task(admin.delete(f"/api/v1/nodes/{node['id']}"))
        await wait_until_blocked(db, "FROM nodes", "the delete")
        await placement.commit()
        r = await delete
    assert r.status_code == 409, r.text
    orphaned = await db.fetch_val("SELECT count(*) FROM tenants WHERE node_id IS NULL")
    assert orphaned == 0


async def test_two_deletes_at_once_are_204_and_404(
    node_body: dict, admin: httpx.AsyncClient
) -> None:
    import asyncio

    node = (await admin.post("/api/v1/nodes", json=node_body)).json()
    results = await asyncio.gather(*(admin.delete(f"/api/v1/nodes/{node['id']}") for _ in range(2)))
    assert sorted(r.status_code for r in results) == [204, 404]
