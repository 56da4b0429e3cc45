"""What the portal needs of the user API: projects open to users, retry, and tenants that
say why they failed and what they are doing in fixed words, never internal detail."""

from __future__ import annotations

import uuid
from datetime import datetime

import httpx
import pytest

from controlplane.users.tenant_view import error_reason, user_health
from tests.conftest import flush_audit
from tests.users.test_user_tenants import _user

SECRET_BITS = ("pve1", "10000", "ProxmoxUnavailableError", "/nodes/", "Traceback", "127.")


async def _make_operator_project(admin: httpx.AsyncClient) -> dict:
    r = await admin.post(
        "/api/v1/projects",
        json={"name": "Internal", "slug": "internal", "template_vmid": 9000, "ram_mb": 256},
    )
    assert r.status_code == 201, r.text
    assert r.json()["self_service"] is False  # the default
    return r.json()


async def test_user_projects_lists_only_self_service_ones(
    client: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    cluster: dict,
) -> None:
    ada = await _user(client, "ada@example.com")
    internal = await _make_operator_project(admin)
    r = await client.get("/api/v1/user/projects", headers=ada)
    assert r.status_code == 200, r.text
    projects = r.json()
    assert [p["slug"] for p in projects] == ["web", "big"]  # not "internal"
    assert projects[0] == {
        "id": projects[0]["id"],
        "slug": "web",
        "name": "Web",
        "ram_mb": 1024,
        "cores": 1,
        "disk_gb": 8,
        "is_default": True,
    }
    # The operator opens one more through the admin API.
    r = await admin.put(f"/api/v1/projects/{internal['id']}", json={"self_service": True})
    assert r.status_code == 200 and r.json()["self_service"] is True
    r = await client.get("/api/v1/user/projects", headers=ada)
    assert [p["slug"] for p in r.json()] == ["web", "big", "internal"]
    assert (await client.get("/api/v1/user/projects")).status_code == 401


async def test_users_cannot_create_from_an_operator_project(
    client: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    cluster: dict,
    app,
) -> None:
    ada = await _user(client, "ada@example.com")
    await _make_operator_project(admin)
    answers = []
    for slug in ("internal", "no-such-project"):
        r = await client.post(
            "/api/v1/user/tenants", json={"subdomain": "sneaky", "project": slug}, headers=ada
        )
        assert r.status_code == 422, r.text
        assert r.json()["error"]["fields"][0]["field"] == "project"
        answers.append(r.json()["error"]["message"].replace(slug, "?"))
    assert len(set(answers)) == 1  # an existing project reads exactly like a missing one
    count = await app.state.cp.db.fetch_val("SELECT count(*) FROM tenants")
    assert count == 0
    # The admin API still uses any project.
    r = await admin.post("/api/v1/tenants", json={"subdomain": "ops", "project_id": None})
    assert r.status_code == 202, r.text


async def test_the_default_project_must_be_open_to_users(
    client: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    cluster: dict,
) -> None:
    ada = await _user(client, "ada@example.com")
    projects = (await admin.get("/api/v1/projects")).json()["items"]
    web = next(p for p in projects if p["slug"] == "web")
    r = await admin.put(f"/api/v1/projects/{web['id']}", json={"self_service": False})
    assert r.status_code == 200
    r = await client.post("/api/v1/user/tenants", json={"subdomain": "plain"}, headers=ada)
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "project"
    assert "default" in r.json()["error"]["message"]
    await admin.put(f"/api/v1/projects/{web['id']}", json={"self_service": True})
    r = await client.post("/api/v1/user/tenants", json={"subdomain": "plain"}, headers=ada)
    assert r.status_code == 202, r.text


async def _fail(app: object, tenant_id: str, *, step: str, error: str, failed: str) -> None:
    await app.state.cp.db.execute(  # type: ignore[attr-defined]
        "UPDATE tenants SET status = 'error', step = NULL, error_step = %(step)s,"
        " last_error = %(error)s, failed_status = %(failed)s,"
        " health = 'unknown: ProxmoxUnavailableError: GET /nodes/pve1/lxc/10000/status'"
        " WHERE id = %(id)s",
        {"id": tenant_id, "step": step, "error": error, "failed": failed},
    )


async def test_retry_by_the_owner(
    client: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    cluster: dict,
    app,
) -> None:
    ada = await _user(client, "ada@example.com")
    bob = await _user(client, "bob@example.com")
    r = await client.post("/api/v1/user/tenants", json={"subdomain": "acme"}, headers=ada)
    t = r.json()
    # Not in error: 409, as for the admin.
    r = await client.post(f"/api/v1/user/tenants/{t['id']}/retry", headers=ada)
    assert r.status_code == 409 and "allowed from: error" in r.json()["error"]["message"]
    error = "bootstrap: ProxmoxTaskError: command failed on pve1 (vmid 10000)"
    await _fail(app, t["id"], step="bootstrap", error=error, failed="provisioning")
    r = await client.get(f"/api/v1/user/tenants/{t['id']}", headers=ada)
    body = r.json()
    assert body["status"] == "error" and body["error_reason"] == "bootstrap_failed"
    assert body["health"] == "unknown"
    for bit in SECRET_BITS:
        assert bit not in r.text, bit
    # The admin keeps the detail.
    r = await admin.get(f"/api/v1/tenants/{t['id']}")
    assert r.json()["last_error"] == error and "ProxmoxUnavailableError" in r.json()["health"]
    # Someone else's tenant (or none) is a 404; without a token 401.
    r = await client.post(f"/api/v1/user/tenants/{t['id']}/retry", headers=bob)
    assert r.status_code == 404
    r = await client.post(f"/api/v1/user/tenants/{uuid.uuid4()}/retry", headers=ada)
    assert r.status_code == 404
    r = await client.post(f"/api/v1/user/tenants/{t['id']}/retry")
    assert r.status_code == 401
    r = await client.post("/api/v1/user/tenants/not-a-uuid/retry", headers=ada)
    assert r.status_code == 422
    # The owner's retry resumes at the failed step.
    r = await client.post(f"/api/v1/user/tenants/{t['id']}/retry", headers=ada)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "provisioning" and body["step"] == "bootstrap"
    assert body["error_reason"] is None
    started = datetime.fromisoformat(body["step_started_at"])
    assert started.tzinfo is not None
    r = await client.post(f"/api/v1/user/tenants/{t['id']}/retry", headers=ada)
    assert r.status_code == 409
    await flush_audit(app)
    actions = await app.state.cp.db.fetch_all(
        "SELECT actor FROM audit_log WHERE action = 'tenant.retry'"
    )
    assert len(actions) == 1 and actions[0]["actor"].startswith("user:")


async def test_step_started_at_follows_the_step(
    client: httpx.AsyncClient,
    cluster: dict,
    app,
) -> None:
    ada = await _user(client, "ada@example.com")
    t = (await client.post("/api/v1/user/tenants", json={"subdomain": "acme"}, headers=ada)).json()
    assert t["step"] == "clone" and t["step_started_at"] is not None
    db = app.state.cp.db
    first = await db.fetch_val("SELECT step_started_at FROM tenants WHERE id = %(id)s", t)
    # Another write in the same step keeps the time; a new step sets it.
    await db.execute("UPDATE tenants SET attempts = 2 WHERE id = %(id)s", t)
    assert await db.fetch_val("SELECT step_started_at FROM tenants WHERE id = %(id)s", t) == first
    await db.execute("UPDATE tenants SET step = 'start' WHERE id = %(id)s", t)
    later = await db.fetch_val("SELECT step_started_at FROM tenants WHERE id = %(id)s", t)
    assert later > first
    await db.execute("UPDATE tenants SET status = 'active', step = NULL WHERE id = %(id)s", t)
    r = await client.get(f"/api/v1/user/tenants/{t['id']}", headers=ada)
    assert r.json()["step"] is None and r.json()["step_started_at"] is None
    assert r.json()["error_reason"] is None


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"status": "active"}, None),
        ({"status": "error", "error_step": "clone",
          "last_error": "clone: ProxmoxNotFoundError: no CT 9000 on pve1"}, "template_missing"),
        ({"status": "error", "error_step": "start",
          "last_error": "start: ProxmoxUnavailableError: GET https://10.0.0.5:8006"},
         "node_unavailable"),
        ({"status": "error", "error_step": "configure",
          "last_error": "configure: ProxmoxTaskError: vzcreate failed"}, "provisioning_failed"),
        ({"status": "error", "error_step": "route",
          "last_error": "route: CaddyError: 500"}, "route_failed"),
        ({"status": "error", "error_step": "stop", "failed_status": "suspending",
          "last_error": "stop: ProxmoxTaskError: lock"}, "suspend_failed"),
        ({"status": "error", "error_step": "start", "failed_status": "resuming",
          "last_error": "start: ProxmoxTaskError: x"}, "resume_failed"),
        ({"status": "error", "error_step": "destroy", "failed_status": "deleting",
          "last_error": "destroy: ProxmoxTaskError: x"}, "delete_failed"),
        ({"status": "error", "error_step": "unknown", "last_error": "unknown: KeyError: 'x'"},
         "internal"),
        ({"status": "error", "error_step": None, "last_error": None}, "internal"),
    ],
)  # fmt: skip
def test_error_reason_vocabulary(row: dict, reason: str | None) -> None:
    assert error_reason(row) == reason


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (None, None),
        ("ok", "ok"),
        ("container_stopped", "container_stopped"),
        ("container_missing", "container_missing"),
        ("app_http_502", "app_error"),
        ("app_unreachable: ConnectError", "app_unreachable"),
        ("unknown: ProxmoxUnavailableError: GET /nodes/pve1/lxc/10001/status/current", "unknown"),
        ("something new", "unknown"),
    ],
)
def test_health_vocabulary(raw: str | None, shown: str | None) -> None:
    assert user_health(raw) == shown
