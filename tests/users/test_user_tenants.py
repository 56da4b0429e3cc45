"""`/api/v1/user/tenants`: a user's own tenants, and nothing of anyone else's."""

from __future__ import annotations

import uuid

import httpx

from tests.auth.conftest import bearer, login, register
from tests.conftest import ADMIN_TOKEN, flush_audit


async def _user(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    await register(client, email)
    return bearer((await login(client, email))["access_token"])


async def _activate(app: object, tenant_id: str) -> None:
    """What the provisioner does when it finishes (not under test here)."""
    await app.state.cp.db.execute(  # type: ignore[attr-defined]
        "UPDATE tenants SET status = 'active', step = NULL WHERE id = %(id)s", {"id": tenant_id}
    )


async def test_create_list_get(client: httpx.AsyncClient, cluster: dict, app) -> None:
    ada = await _user(client, "ada@example.com")
    r = await client.post("/api/v1/user/tenants", json={"subdomain": "acme"}, headers=ada)
    assert r.status_code == 202, r.text
    t = r.json()
    assert r.headers["location"] == f"/api/v1/user/tenants/{t['id']}"
    assert t["status"] == "provisioning" and t["url"] == "https://acme.localhost/"
    assert t["name"] == "acme"
    for hidden in ("node_id", "vmid", "ip_address", "last_error", "owner_user_id"):
        assert hidden not in t
    r = await client.post(
        "/api/v1/user/tenants",
        json={"subdomain": "big-one", "name": "Big one", "project": "big"},
        headers=ada,
    )
    assert r.status_code == 202, r.text
    big = r.json()
    page = (await client.get("/api/v1/user/tenants", headers=ada)).json()
    assert page["total"] == 2 and {i["id"] for i in page["items"]} == {t["id"], big["id"]}
    r = await client.get(f"/api/v1/user/tenants/{t['id']}", headers=ada)
    assert r.status_code == 200 and r.json()["subdomain"] == "acme"
    db = app.state.cp.db
    owner = await db.fetch_val(
        "SELECT owner_user_id FROM tenants WHERE id = %(id)s", {"id": t["id"]}
    )
    me = (await client.get("/api/v1/auth/me", headers=ada)).json()
    assert str(owner) == me["id"]
    ram = await db.fetch_val("SELECT ram_mb FROM tenants WHERE id = %(id)s", {"id": big["id"]})
    assert ram == 2048
    await flush_audit(app)
    actors = await db.fetch_all(
        "SELECT actor FROM audit_log WHERE action = 'tenant.create' ORDER BY id"
    )
    assert [a["actor"] for a in actors] == [f"user:{me['id']}"] * 2


async def test_bad_creates(client: httpx.AsyncClient, cluster: dict) -> None:
    ada = await _user(client, "ada@example.com")
    for body, field, status in [
        ({"subdomain": "www"}, "subdomain", 422),
        ({"subdomain": "Bad_Label"}, "subdomain", 422),
        ({"subdomain": "ok", "project": "Nope!"}, "project", 422),
        ({"subdomain": "ok", "node_id": str(uuid.uuid4())}, "node_id", 422),
        ({"subdomain": "ok", "owner_user_id": str(uuid.uuid4())}, "owner_user_id", 422),
        ({"subdomain": "ok", "project": "missing"}, "project", 422),
    ]:
        r = await client.post("/api/v1/user/tenants", json=body, headers=ada)
        assert r.status_code == status, (body, r.text)
        assert field in [f["field"] for f in r.json()["error"]["fields"]], r.text
    r = await client.post("/api/v1/user/tenants", json={"subdomain": "taken"}, headers=ada)
    assert r.status_code == 202
    bob = await _user(client, "bob@example.com")
    r = await client.post("/api/v1/user/tenants", json={"subdomain": "taken"}, headers=bob)
    assert r.status_code == 409 and r.json()["error"]["fields"][0]["field"] == "subdomain"
    r = await client.post("/api/v1/user/tenants", json={"subdomain": "x"})
    assert r.status_code == 401


async def test_suspend_resume_delete(client: httpx.AsyncClient, cluster: dict, app) -> None:
    ada = await _user(client, "ada@example.com")
    t = (await client.post("/api/v1/user/tenants", json={"subdomain": "acme"}, headers=ada)).json()
    r = await client.post(f"/api/v1/user/tenants/{t['id']}/suspend", headers=ada)
    assert r.status_code == 409 and "provisioning" in r.json()["error"]["message"]
    await _activate(app, t["id"])
    r = await client.post(f"/api/v1/user/tenants/{t['id']}/suspend", headers=ada)
    assert r.status_code == 202 and r.json()["status"] == "suspending"
    await app.state.cp.db.execute(
        "UPDATE tenants SET status = 'suspended' WHERE id = %(id)s", {"id": t["id"]}
    )
    r = await client.post(f"/api/v1/user/tenants/{t['id']}/resume", headers=ada)
    assert r.status_code == 202 and r.json()["status"] == "resuming"
    r = await client.delete(f"/api/v1/user/tenants/{t['id']}", headers=ada)
    assert r.status_code == 202 and r.json()["status"] == "deleting"
    r = await client.delete(f"/api/v1/user/tenants/{t['id']}", headers=ada)
    assert r.status_code == 409


async def test_users_cannot_see_or_touch_each_others_tenants(
    client: httpx.AsyncClient, cluster: dict, app
) -> None:
    ada = await _user(client, "ada@example.com")
    bob = await _user(client, "bob@example.com")
    adas = (
        await client.post("/api/v1/user/tenants", json={"subdomain": "ada"}, headers=ada)
    ).json()
    await _activate(app, adas["id"])
    bobs = (
        await client.post("/api/v1/user/tenants", json={"subdomain": "bob"}, headers=bob)
    ).json()
    await _activate(app, bobs["id"])

    for me, mine, theirs in ((ada, adas, bobs), (bob, bobs, adas)):
        page = (await client.get("/api/v1/user/tenants", headers=me)).json()
        assert [t["id"] for t in page["items"]] == [mine["id"]]
        tid = theirs["id"]
        for method, path in [
            ("GET", f"/api/v1/user/tenants/{tid}"),
            ("POST", f"/api/v1/user/tenants/{tid}/suspend"),
            ("POST", f"/api/v1/user/tenants/{tid}/resume"),
            ("DELETE", f"/api/v1/user/tenants/{tid}"),
            ("POST", f"/api/v1/user/tenants/{tid}/sso-token"),
        ]:
            r = await client.request(method, path, headers=me)
            assert r.status_code == 404, (method, path, r.text)
            # ...exactly as for a tenant that does not exist at all.
            r2 = await client.request(method, path.replace(tid, str(uuid.uuid4())), headers=me)
            assert r2.status_code == 404
            assert r.json()["error"]["code"] == r2.json()["error"]["code"] == "not_found"
    db = app.state.cp.db
    rows = await db.fetch_all("SELECT subdomain, status FROM tenants ORDER BY subdomain")
    assert [(r["subdomain"], r["status"]) for r in rows] == [("ada", "active"), ("bob", "active")]
    # The admin still sees both.
    r = await client.get("/api/v1/tenants", headers=bearer("admin-" + "x7Qp2" * 8))
    assert r.json()["total"] == 2


async def test_list_filter_and_pages(client: httpx.AsyncClient, cluster: dict, app) -> None:
    ada = await _user(client, "ada@example.com")
    ids = []
    for i in range(3):
        r = await client.post("/api/v1/user/tenants", json={"subdomain": f"t{i}"}, headers=ada)
        ids.append(r.json()["id"])
    await _activate(app, ids[0])
    r = await client.get("/api/v1/user/tenants", params={"status": "active"}, headers=ada)
    assert [t["id"] for t in r.json()["items"]] == [ids[0]]
    r = await client.get("/api/v1/user/tenants", params={"limit": 2, "offset": 2}, headers=ada)
    assert r.json()["total"] == 3 and len(r.json()["items"]) == 1
    r = await client.get("/api/v1/user/tenants", params={"status": "sleeping"}, headers=ada)
    assert r.status_code == 422


async def test_no_room_is_said_in_user_words(client: httpx.AsyncClient, cluster: dict, app) -> None:
    ada = await _user(client, "ada@example.com")
    await app.state.cp.db.execute("UPDATE nodes SET status = 'offline'")
    r = await client.post("/api/v1/user/tenants", json={"subdomain": "acme"}, headers=ada)
    assert r.status_code == 409, r.text
    message = r.json()["error"]["message"]
    assert message == "there is no room for a new tenant right now; try again later"
    # The operator, through the admin API, still gets the detail.
    r = await client.post(
        "/api/v1/tenants",
        json={"subdomain": "acme"},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert r.status_code == 409 and "template" in r.json()["error"]["message"], r.text
