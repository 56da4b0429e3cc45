"""App management over pct exec on the node's SSH, against the simulator's systemd and
journal: state, restart, logs, named actions, and the refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controlplane.projects.schemas import ProjectCreate
from tests.conftest import flush_audit
from tests.console.conftest import Plane


def app_path(tenant: dict[str, Any], rest: str = "", admin: bool = False) -> str:
    prefix = "/api/v1/tenants" if admin else "/api/v1/user/tenants"
    return f"{prefix}/{tenant['id']}/app{rest}"


async def test_state_restart_and_logs(plane: Plane) -> None:
    ada = await plane.user("ada@example.com")
    tenant = await plane.active_tenant(ada, "ada")
    await plane.db.execute(
        "UPDATE tenants SET health = 'ok', observed_at = now() WHERE id = %(id)s",
        {"id": tenant["id"]},
    )
    r = await ada["client"].get(app_path(tenant))
    assert r.status_code == 200, r.text
    app = r.json()
    assert app["service"] == "myapp.service"
    assert app["state"]["active_state"] == "active" and app["state"]["sub_state"] == "running"
    pid = app["state"]["main_pid"]
    assert pid and app["health"]["health"] == "ok" and app["health"]["observed_at"]
    assert app["actions"] == [
        {"name": "migrate", "confirm": True},
        {"name": "fail", "confirm": False},
    ]
    r = await ada["client"].post(app_path(tenant, "/restart"))
    assert r.status_code == 200, r.text
    run = r.json()
    assert (run["kind"], run["status"], run["exit_status"]) == ("restart", "done", 0)
    assert run["command"] == "systemctl restart myapp.service"
    r = await ada["client"].get(app_path(tenant))
    assert r.json()["state"]["main_pid"] != pid  # a new process
    assert r.json()["runs"][0]["id"] == run["id"]
    r = await ada["client"].get(app_path(tenant, "/logs"), params={"lines": 3})
    assert r.status_code == 200, r.text
    logs = r.json()
    assert len(logs["lines"]) == 3 and not logs["truncated"]
    assert "myapp" in logs["lines"][-1]
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    r = await ada["client"].get(app_path(tenant, "/logs"), params={"since": later})
    assert r.status_code == 200 and r.json()["lines"] == []
    await flush_audit(plane.app)
    entry = await plane.db.fetch_one("SELECT * FROM audit_log WHERE action = 'app.restart'")
    assert entry["actor"] == f"user:{ada['id']}" and entry["details"]["exit_status"] == 0


async def test_actions_keep_output_and_exit_status(plane: Plane) -> None:
    ada = await plane.user("ada@example.com")
    tenant = await plane.active_tenant(ada, "ada")
    r = await ada["client"].post(app_path(tenant, "/actions/migrate"))
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "confirm"
    r = await ada["client"].post(app_path(tenant, "/actions/migrate"), json={"confirm": True})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["stdout"]) == ("done", "migrated\n")
    r = await plane.admin.post(app_path(tenant, "/actions/fail", admin=True))
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["exit_status"]) == ("failed", 3)
    assert r.json()["actor"] == "admin-token"
    runs = await plane.db.fetch_all(
        "SELECT name, status, exit_status FROM app_runs ORDER BY started_at"
    )
    assert [(x["name"], x["status"], x["exit_status"]) for x in runs] == [
        ("migrate", "done", 0),
        ("fail", "failed", 3),
    ]
    ct = plane.sim.sim.containers[tenant["vmid"]]  # type: ignore[attr-defined]
    assert "echo migrated" in [c["command"] for c in ct.commands]
    r = await ada["client"].post(app_path(tenant, "/actions/nope"))
    assert r.status_code == 404
    r = await ada["client"].post(app_path(tenant, "/actions/Bad Name"))
    assert r.status_code == 422
    r = await ada["client"].post(app_path(tenant, "/actions/migrate"), json={"confirm": "yes"})
    assert r.status_code == 422


async def test_refusals(plane: Plane) -> None:
    ada = await plane.user("ada@example.com")
    bob = await plane.user("bob@example.com")
    tenant = await plane.active_tenant(ada, "ada")
    for method, rest in (
        ("get", ""),
        ("post", "/restart"),
        ("get", "/logs"),
        ("post", "/actions/fail"),
    ):
        r = await bob["client"].request(method, app_path(tenant, rest))
        assert r.status_code == 404, (rest, r.text)
        r = await plane.http.request(method, app_path(tenant, rest))
        assert r.status_code == 401
        r = await ada["client"].request(method, app_path(tenant, rest, admin=True))
        assert r.status_code == 403
    for params in ({"lines": 0}, {"lines": 1001}, {"lines": "x"}, {"since": "yesterday"}):
        r = await ada["client"].get(app_path(tenant, "/logs"), params=params)
        assert r.status_code == 422, params
        assert r.json()["error"]["fields"][0]["field"] in ("lines", "since")
    await plane.db.execute(
        "UPDATE tenants SET status = 'suspended' WHERE id = %(id)s", {"id": tenant["id"]}
    )
    r = await ada["client"].post(app_path(tenant, "/restart"))
    assert r.status_code == 409 and "suspended" in r.json()["error"]["message"]
    await plane.db.execute(
        "UPDATE tenants SET status = 'active' WHERE id = %(id)s", {"id": tenant["id"]}
    )
    await plane.db.execute("UPDATE projects SET app_service = NULL")
    r = await ada["client"].get(app_path(tenant))
    assert r.status_code == 200 and r.json()["state"] is None
    r = await ada["client"].post(app_path(tenant, "/restart"))
    assert r.status_code == 409 and "app_service" in r.json()["error"]["message"]


async def test_one_run_at_a_time(plane: Plane) -> None:
    ada = await plane.user("ada@example.com")
    tenant = await plane.active_tenant(ada, "ada")
    await plane.db.execute(
        "INSERT INTO app_runs (id, tenant_id, kind, name, command, actor)"
        " VALUES (gen_random_uuid(), %(id)s, 'action', 'migrate', 'x', 'admin-token')",
        {"id": tenant["id"]},
    )
    r = await ada["client"].post(app_path(tenant, "/restart"))
    assert r.status_code == 409 and "already running" in r.json()["error"]["message"]
    # the same run, left behind by a crash long ago, no longer blocks
    await plane.db.execute("UPDATE app_runs SET started_at = now() - interval '1 hour'")
    r = await ada["client"].post(app_path(tenant, "/restart"))
    assert r.status_code == 200, r.text
    stale = await plane.db.fetch_one("SELECT status, error FROM app_runs WHERE name = 'migrate'")
    assert stale["status"] == "failed" and "interrupted" in stale["error"]


async def test_an_unreachable_node_is_a_502_and_the_run_is_kept(plane: Plane) -> None:
    ada = await plane.user("ada@example.com")
    tenant = await plane.active_tenant(ada, "ada")
    await plane.ssh.close()
    await plane.app.state.cp.ssh.close()  # drop the pooled connection too
    plane.app.state.cp.ssh._closed = False
    r = await ada["client"].post(app_path(tenant, "/actions/fail"))
    assert r.status_code == 502 and r.json()["error"]["code"] == "node_unreachable"
    run = await plane.db.fetch_one("SELECT status, error FROM app_runs")
    assert run["status"] == "failed" and run["error"]
    r = await ada["client"].get(app_path(tenant))
    assert r.status_code == 502


async def test_projects_take_and_change_the_app_fields(plane: Plane) -> None:
    project = (await plane.admin.get("/api/v1/projects")).json()["items"][0]
    assert project["app_service"] == "myapp.service" and len(project["app_actions"]) == 2
    r = await plane.admin.put(
        f"/api/v1/projects/{project['id']}",
        json={"app_actions": [{"name": "seed", "command": "echo seeded", "confirm": False}]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["app_actions"] == [{"name": "seed", "command": "echo seeded", "confirm": False}]
    assert r.json()["app_service"] == "myapp.service"  # untouched
    r = await plane.admin.put(f"/api/v1/projects/{project['id']}", json={"app_service": None})
    assert r.status_code == 200 and r.json()["app_service"] is None
    r = await plane.admin.put(
        f"/api/v1/projects/{project['id']}", json={"app_actions": [{"name": "x", "command": 5}]}
    )
    assert r.status_code == 422
    assert r.json()["error"]["fields"][0]["field"].startswith("app_actions")


def test_project_app_fields_are_validated() -> None:
    base = {"name": "W", "slug": "w", "template_vmid": 9000}
    ok = ProjectCreate.model_validate(
        {**base, "app_service": "my-app@1.service", "app_actions": [{"name": "a", "command": "x"}]}
    )
    assert ok.app_actions[0].confirm is False
    for bad in (
        {"app_service": "myapp"},
        {"app_service": "my app.service"},
        {"app_service": "a;b.service"},
        {"app_actions": [{"name": "A", "command": "x"}]},
        {"app_actions": [{"name": "a", "command": ""}]},
        {"app_actions": [{"name": "a", "command": "x", "extra": 1}]},
        {"app_actions": [{"name": "a", "command": "x"}, {"name": "a", "command": "y"}]},
        {"app_actions": [{"name": f"a{i}", "command": "x"} for i in range(21)]},
    ):
        with pytest.raises(ValueError):
            ProjectCreate.model_validate({**base, **bad})
