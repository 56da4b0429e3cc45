"""The dashboard's pages through their forms: happy paths, 422 next to the field, 409, 404."""

from __future__ import annotations

import json
import re
import uuid

from controlplane.db.gateway import count_queries
from tests.admin.conftest import Browser, audit_rows
from tests.conftest import (
    PVE_TOKEN_ID,
    PVE_TOKEN_SECRET,
    SimHandle,
    terminate_backends,
)


def _db(app: object):  # type: ignore[no-untyped-def]
    return app.state.cp.db  # type: ignore[attr-defined]


def _field_error(html: str, field: str) -> str:
    match = re.search(rf'data-error-for="{field}">([^<]*)<', html)
    assert match, f"no error slot for {field}"
    return match.group(1)


def _node_form(sim: SimHandle, **kw: str) -> dict[str, str]:
    return {
        "name": "pve1",
        "api_url": sim.url,
        "pve_node": "pve1",
        "token_id": PVE_TOKEN_ID,
        "token_secret": PVE_TOKEN_SECRET,
        "vmid_range_start": "10000",
        "vmid_range_end": "10999",
        "ssh_port": "22",
        "ssh_user": "root",
        **kw,
    }


async def _audit(app: object, target_type: str, expect: int) -> list[dict]:
    return await audit_rows(
        app,
        "SELECT actor, action, target_id, details FROM audit_log WHERE target_type = %(t)s"
        " ORDER BY id",
        {"t": target_type},
        expect=expect,
    )


# --- nodes ---------------------------------------------------------------------------------


async def test_node_add_edit_delete(dash: Browser, app: object, pve_sim: SimHandle) -> None:
    r = await dash.post_form("/admin/nodes", _node_form(pve_sim))
    assert r.status_code == 204, r.text
    assert r.headers["hx-redirect"] == "/admin/nodes"
    node = await _db(app).fetch_one("SELECT * FROM nodes")
    # checked against the simulator: online, its memory and its template
    assert node["status"] == "online" and node["total_ram_mb"] > 0 and 9000 in node["templates"]
    assert node["verify_tls"] is False  # the checkbox was not sent
    r = await dash.open("/admin/nodes")
    assert "pve1" in r.text and PVE_TOKEN_SECRET not in r.text

    r = await dash.open(f"/admin/nodes/{node['id']}/edit")
    assert r.status_code == 200 and PVE_TOKEN_SECRET not in r.text
    r = await dash.post_form(
        f"/admin/nodes/{node['id']}",
        _node_form(pve_sim, token_secret="", total_ram_mb="2048", vmid_range_end="10500"),
    )
    assert r.status_code == 204, r.text
    updated = await _db(app).fetch_one("SELECT * FROM nodes")
    assert updated["total_ram_mb"] == 2048 and updated["vmid_range_end"] == 10500
    assert updated["token_secret_sealed"] == node["token_secret_sealed"]  # kept

    r = await dash.post_form(f"/admin/nodes/{node['id']}/delete")
    assert r.status_code == 204 and r.headers["hx-redirect"] == "/admin/nodes"
    assert await _db(app).fetch_val("SELECT count(*) FROM nodes") == 0

    audit = await _audit(app, "node", 3)
    assert [a["action"] for a in audit] == ["node.create", "node.update", "node.delete"]
    assert all(a["actor"].startswith("admin:") for a in audit)
    assert audit[1]["details"]["changed"] == ["total_ram_mb", "vmid_range_end"]
    assert PVE_TOKEN_SECRET not in json.dumps([a["details"] for a in audit])


async def test_node_form_errors_next_to_the_field(
    dash: Browser, app: object, pve_sim: SimHandle
) -> None:
    r = await dash.post_form("/admin/nodes", _node_form(pve_sim, name="Bad Name!", ssh_port="x"))
    assert r.status_code == 422
    assert 'id="node-form"' in r.text and "<html" not in r.text  # the fragment, for HTMX
    assert "DNS label" in _field_error(r.text, "name")
    assert _field_error(r.text, "ssh_port")
    assert 'value="Bad Name!"' in r.text and PVE_TOKEN_SECRET not in r.text
    # Without HTMX the same errors come as a full page.
    r = await dash.post_form("/admin/nodes", _node_form(pve_sim, name="Bad Name!"), htmx=False)
    assert r.status_code == 422 and "<html" in r.text and _field_error(r.text, "name")

    # Proxmox refuses the credentials: nothing is saved, the field is named.
    r = await dash.post_form("/admin/nodes", _node_form(pve_sim, token_secret="wrong-secret"))
    assert r.status_code == 422
    assert "refused" in _field_error(r.text, "token_id")
    r = await dash.post_form("/admin/nodes", _node_form(pve_sim, pve_node="pve9"))
    assert r.status_code == 422 and "no node named" in _field_error(r.text, "pve_node")
    assert await _db(app).fetch_val("SELECT count(*) FROM nodes") == 0

    assert (await dash.post_form("/admin/nodes", _node_form(pve_sim))).status_code == 204
    r = await dash.post_form("/admin/nodes", _node_form(pve_sim))
    assert r.status_code == 409 and "already exists" in _field_error(r.text, "name")

    missing = uuid.uuid4()
    assert (await dash.open(f"/admin/nodes/{missing}/edit")).status_code == 404
    assert (await dash.post_form(f"/admin/nodes/{missing}", _node_form(pve_sim))).status_code == 404
    r = await dash.post_form(f"/admin/nodes/{missing}/delete")
    assert r.status_code == 404 and r.headers["hx-retarget"] == "#flash"


async def test_node_delete_refused_while_tenants_live(
    dash: Browser, app: object, pve_sim: SimHandle
) -> None:
    await dash.post_form("/admin/nodes", _node_form(pve_sim))
    await dash.post_form("/admin/projects", {"name": "Web", "slug": "web", "template_vmid": "9000"})
    project = await _db(app).fetch_one("SELECT id FROM projects")
    r = await dash.post_form(
        "/admin/tenants", {"project_id": str(project["id"]), "subdomain": "acme"}
    )
    assert r.status_code == 204, r.text
    node_id = await _db(app).fetch_val("SELECT id FROM nodes")
    r = await dash.post_form(f"/admin/nodes/{node_id}/delete")
    assert r.status_code == 409
    assert r.headers["hx-retarget"] == "#flash" and "live tenant" in r.text
    assert await _db(app).fetch_val("SELECT count(*) FROM nodes") == 1
    r = await dash.open("/admin/nodes")
    assert '<td class="num tenants">1</td>' in r.text


# --- projects --------------------------------------------------------------------------------


async def test_project_create_edit_default_delete(dash: Browser, app: object) -> None:
    form = {
        "name": "Web app",
        "slug": "web",
        "template_vmid": "9000",
        "ram_mb": "1024",
        "cores": "2",
        "disk_gb": "8",
        "app_port": "3000",
        "health_path": "/healthz",
        "bootstrap_commands": "apt-get update\n\n  systemctl restart app  \n",
        "is_default": "on",
    }
    r = await dash.post_form("/admin/projects", form)
    assert r.status_code == 204, r.text
    web = await _db(app).fetch_one("SELECT * FROM projects WHERE slug = 'web'")
    assert web["bootstrap_commands"] == ["apt-get update", "systemctl restart app"]
    assert web["is_default"] and web["ram_mb"] == 1024

    r = await dash.post_form("/admin/projects", {**form, "slug": "api", "name": "API"})
    assert r.status_code == 204
    defaults = await _db(app).fetch_all("SELECT slug FROM projects WHERE is_default")
    assert [d["slug"] for d in defaults] == ["api"]  # at most one default

    r = await dash.post_form(f"/admin/projects/{web['id']}/default")
    assert r.status_code == 204
    assert await _db(app).fetch_val("SELECT slug FROM projects WHERE is_default") == "web"

    r = await dash.open(f"/admin/projects/{web['id']}/edit")
    assert "apt-get update\nsystemctl restart app" in r.text
    r = await dash.post_form(
        f"/admin/projects/{web['id']}", {**form, "ram_mb": "2048", "health_path": ""}
    )
    assert r.status_code == 204, r.text
    row = await _db(app).fetch_one("SELECT * FROM projects WHERE id = %(id)s", {"id": web["id"]})
    assert row["ram_mb"] == 2048 and row["health_path"] is None

    r = await dash.post_form("/admin/projects", {**form, "name": "Other"})
    assert r.status_code == 409 and "already exists" in _field_error(r.text, "slug")
    r = await dash.post_form("/admin/projects", {**form, "template_vmid": "5", "slug": "X"})
    assert r.status_code == 422
    assert _field_error(r.text, "template_vmid") and _field_error(r.text, "slug")

    r = await dash.post_form(f"/admin/projects/{web['id']}/delete")
    assert r.status_code == 204
    r = await dash.post_form(f"/admin/projects/{web['id']}/delete")
    assert r.status_code == 404
    audit = await _audit(app, "project", 5)
    assert [a["action"] for a in audit] == [
        "project.create",
        "project.create",
        "project.update",
        "project.update",
        "project.delete",
    ]


# --- tenants ---------------------------------------------------------------------------------


async def _tenant_setup(dash: Browser, app: object, sim: SimHandle) -> dict:
    assert (await dash.post_form("/admin/nodes", _node_form(sim))).status_code == 204
    r = await dash.post_form(
        "/admin/projects",
        {
            "name": "Web",
            "slug": "web",
            "template_vmid": "9000",
            "ram_mb": "512",
            "is_default": "on",
        },
    )
    assert r.status_code == 204
    return await _db(app).fetch_one("SELECT * FROM projects")


async def test_tenant_create_list_filter_detail(
    dash: Browser, app: object, pve_sim: SimHandle
) -> None:
    project = await _tenant_setup(dash, app, pve_sim)
    r = await dash.open("/admin/tenants/new")
    assert f'value="{project["id"]}" selected' in r.text  # the default project is preselected
    r = await dash.post_form(
        "/admin/tenants", {"project_id": str(project["id"]), "subdomain": "acme"}
    )
    assert r.status_code == 204, r.text
    tenant = await _db(app).fetch_one("SELECT * FROM tenants")
    assert r.headers["hx-redirect"] == f"/admin/tenants/{tenant['id']}"
    assert tenant["status"] == "provisioning"

    r = await dash.open("/admin/tenants")
    assert "acme" in r.text and 'data-status="provisioning"' in r.text
    assert "every 1500ms" in r.text  # a non-final tenant is shown: the table polls
    r = await dash.hx_get("/admin/tenants?status=active")
    assert "acme" not in r.text and "every 1500ms" not in r.text and "<html" not in r.text
    assert "every 10000ms" in r.text  # idle: a slow refresh still shows new tenants
    r = await dash.hx_get(f"/admin/tenants?project_id={project['id']}&status=provisioning")
    assert "acme" in r.text
    r = await dash.hx_get(f"/admin/tenants?node_id={uuid.uuid4()}")
    assert "acme" not in r.text
    r = await dash.hx_get("/admin/tenants?owner=not-a-uuid&status=bogus")
    assert r.status_code == 422 and "owner" in r.text and "status" in r.text

    r = await dash.open(f"/admin/tenants/{tenant['id']}")
    assert r.status_code == 200 and 'id="tenant-status">provisioning' in r.text
    assert "every 1500ms" in r.text and "tenant.create" in r.text  # the audit trail
    assert (await dash.open(f"/admin/tenants/{uuid.uuid4()}")).status_code == 404

    # Once final, nothing polls; the command output is shown.
    await _db(app).execute(
        "UPDATE tenants SET status = 'active', step = NULL, command_output = %(out)s",
        {
            "out": json.dumps(
                [{"command": "echo hi", "exit_status": 0, "stdout": "hi\n", "stderr": ""}]
            )
        },
    )
    r = await dash.hx_get(f"/admin/tenants/{tenant['id']}")
    assert 'id="tenant-status">active' in r.text and "every 1500ms" not in r.text
    assert "$ echo hi" in r.text and "hi\n</pre>" in r.text
    assert "tenants-changed from:body" in r.text  # still refreshed after an action


async def test_tenant_form_errors(dash: Browser, app: object, pve_sim: SimHandle) -> None:
    project = await _tenant_setup(dash, app, pve_sim)
    cases = [
        ({"project_id": str(project["id"]), "subdomain": "Not OK"}, 422, "subdomain"),
        ({"project_id": str(project["id"]), "subdomain": "admin"}, 422, "subdomain"),
        ({"project_id": "nope", "subdomain": "ok"}, 422, "project_id"),
        ({"project_id": str(uuid.uuid4()), "subdomain": "ok"}, 404, "project_id"),
        (
            {"project_id": str(project["id"]), "subdomain": "ok", "node_id": str(uuid.uuid4())},
            404,
            "node_id",
        ),
    ]
    for form, status, field in cases:
        r = await dash.post_form("/admin/tenants", form)
        assert r.status_code == status, (form, r.text)
        assert _field_error(r.text, field), form
    assert (
        await dash.post_form(
            "/admin/tenants", {"project_id": str(project["id"]), "subdomain": "ok"}
        )
    ).status_code == 204
    r = await dash.post_form(
        "/admin/tenants", {"project_id": str(project["id"]), "subdomain": "ok"}
    )
    assert r.status_code == 409 and "taken" in _field_error(r.text, "subdomain")


async def test_tenant_actions(dash: Browser, app: object, pve_sim: SimHandle) -> None:
    project = await _tenant_setup(dash, app, pve_sim)
    await dash.post_form("/admin/tenants", {"project_id": str(project["id"]), "subdomain": "acme"})
    db = _db(app)
    tid = await db.fetch_val("SELECT id FROM tenants")

    # Not allowed while provisioning: a 409 shown in the banner, nothing changes.
    r = await dash.post_form(f"/admin/tenants/{tid}/suspend")
    assert r.status_code == 409 and r.headers["hx-retarget"] == "#flash"
    assert "provisioning" in r.text

    await db.execute("UPDATE tenants SET status = 'active', step = NULL")
    r = await dash.open(f"/admin/tenants/{tid}")
    assert 'data-action="suspend"' in r.text and 'data-action="resume"' not in r.text
    assert "hx-confirm=" in r.text
    r = await dash.post_form(f"/admin/tenants/{tid}/suspend")
    assert r.status_code == 204 and r.headers["hx-trigger"] == "tenants-changed"
    assert await db.fetch_val("SELECT status FROM tenants") == "suspending"

    await db.execute("UPDATE tenants SET status = 'suspended', step = NULL")
    assert (await dash.post_form(f"/admin/tenants/{tid}/resume")).status_code == 204
    assert await db.fetch_val("SELECT status FROM tenants") == "resuming"

    await db.execute(
        "UPDATE tenants SET status = 'error', last_error = 'boom', error_step = 'clone'"
    )
    r = await dash.open(f"/admin/tenants/{tid}")
    assert (
        "boom" in r.text
        and 'data-action="retry"' in r.text
        and 'data-action="force-delete"' in r.text
    )
    assert (await dash.post_form(f"/admin/tenants/{tid}/retry")).status_code == 204
    assert await db.fetch_val("SELECT status FROM tenants") == "provisioning"

    assert (await dash.post_form(f"/admin/tenants/{tid}/delete")).status_code == 204
    assert await db.fetch_val("SELECT status FROM tenants") == "deleting"
    r = await dash.post_form(f"/admin/tenants/{tid}/force-delete", htmx=False)
    assert r.status_code == 303 and r.headers["location"] == f"/admin/tenants/{tid}"
    assert await db.fetch_val("SELECT force_delete FROM tenants") is True

    assert (await dash.post_form(f"/admin/tenants/{tid}/explode")).status_code == 404
    assert (await dash.post_form(f"/admin/tenants/{uuid.uuid4()}/suspend")).status_code == 404

    audit = await _audit(app, "tenant", 6)
    assert [a["action"] for a in audit] == [
        "tenant.create",
        "tenant.suspend",
        "tenant.resume",
        "tenant.retry",
        "tenant.delete",
        "tenant.force_delete",
    ]
    r = await dash.open(f"/admin/tenants/{tid}")
    assert r.text.count("tenant.") >= 6


# --- audit, settings, overview, network ---------------------------------------------------------


async def test_audit_filters_and_pages(dash: Browser, app: object) -> None:
    from controlplane.audit.writer import AuditEntry

    audit = app.state.cp.audit  # type: ignore[attr-defined]
    for i in range(60):
        audit.record(
            AuditEntry(actor="system", action="tenant.tick", target_type="tenant", target_id=str(i))
        )
    await audit_rows(app, "SELECT id FROM audit_log WHERE action = 'tenant.tick'", expect=60)
    r = await dash.open("/admin/audit?action=tenant.tick")
    assert r.status_code == 200 and "60 entries" in r.text and "older →" in r.text
    r = await dash.hx_get("/admin/audit?action=tenant.tick&offset=50")
    assert "<html" not in r.text and "51\u201360 of 60" in r.text
    r = await dash.hx_get("/admin/audit?actor=alice")  # an admin's name stands for their id
    assert "admin.login" in r.text and "tenant.tick" not in r.text
    r = await dash.hx_get("/admin/audit?target_type=tenant&target_id=7")
    assert "1 entry" in r.text
    r = await dash.hx_get("/admin/audit?since=2999-01-01T00:00")
    assert "0 entries" in r.text
    r = await dash.hx_get("/admin/audit?since=yesterday&offset=-1")
    assert r.status_code == 422 and "since" in r.text and "offset" in r.text


async def test_settings_page(dash: Browser, app: object) -> None:
    db = _db(app)
    await db.execute(
        "INSERT INTO projects (id, name, slug, template_vmid, ram_mb, cores, disk_gb, app_port)"
        " VALUES (%(id)s, 'P', 'p', 9000, 512, 1, 8, 8080)",
        {"id": uuid.uuid4()},
    )
    project_id = await db.fetch_val("SELECT id FROM projects")
    r = await dash.open("/admin/settings")
    version = re.search(r'name="version" value="([^"]+)"', r.text).group(1)  # type: ignore[union-attr]
    tiers = [{"name": "basic", "label": "Basic", "max_tenants": 2, "max_ram_mb": 2048}]
    # The base domain is BASE_DOMAIN (one source of truth): shown, not editable here.
    assert "BASE_DOMAIN" in r.text and 'name="base_domain"' not in r.text
    form = {
        "version": version,
        "default_project": str(project_id),
        "ram_overcommit": "1.5",
        "billing_tiers": json.dumps(tiers),
    }
    # A base domain sent anyway (an old page, a script) is refused, saying where it lives.
    r = await dash.post_form("/admin/settings", {**form, "base_domain": "apps.example.com"})
    assert r.status_code == 422
    assert "BASE_DOMAIN" in _field_error(r.text, "base_domain")
    r = await dash.post_form("/admin/settings", form)
    assert r.status_code == 204 and r.headers["hx-redirect"] == "/admin/settings?saved=1"
    r = await dash.open("/admin/settings?saved=1")
    assert "Saved." in r.text and "apps.example.com" not in r.text
    assert await db.fetch_val("SELECT is_default FROM projects") is True

    # The old version is stale now: refused, nothing overwritten.
    r = await dash.post_form("/admin/settings", {**form, "ram_overcommit": "3"})
    assert r.status_code == 409 and "changed by someone else" in r.text
    bad = {
        **form,
        "version": "",
        "ram_overcommit": "99",
        "billing_tiers": '[{"name": "x"',
    }
    r = await dash.post_form("/admin/settings", bad)
    assert r.status_code == 422 and "not valid JSON" in _field_error(r.text, "billing_tiers")
    r = await dash.post_form("/admin/settings", {**bad, "billing_tiers": "[]"})
    assert r.status_code == 422
    assert _field_error(r.text, "ram_overcommit")

    rows = await audit_rows(
        app, "SELECT details FROM audit_log WHERE action = 'settings.update'", expect=1
    )
    row = rows[0]
    assert row["details"]["changed"]["ram_overcommit"] == {"from": 1.0, "to": 1.5}
    assert set(row["details"]["changed"]) == {
        "default_project",
        "ram_overcommit",
        "billing_tiers",
    }


async def test_overview(dash: Browser, app: object) -> None:
    db = _db(app)
    node_id = uuid.uuid4()
    await db.execute(
        "INSERT INTO nodes (id, name, api_url, pve_node, token_id, token_secret_sealed, total_ram_mb,"
        " allocated_ram_mb, vmid_range_start, vmid_range_end, status, last_error)"
        " VALUES (%(id)s, 'sick', 'https://n:8006', 'pve1', 'a@pam!t', 'v1:x', 4000, 3000, 100, 200,"
        " 'offline', 'connection refused')",
        {"id": node_id},
    )
    await db.execute(
        "INSERT INTO tenants (id, name, subdomain, node_id, ram_mb, cores, status)"
        " VALUES (%(id)s, 't', 't1', %(n)s, 512, 1, 'error')",
        {"id": uuid.uuid4(), "n": node_id},
    )
    r = await dash.open("/admin")
    assert r.status_code == 200
    assert "connection refused" in r.text  # failing nodes
    assert "3000 / 4000 MB" in r.text and 'style="width: 75%"' in r.text  # capacity bar
    assert re.search(r"<b>1</b><span class=\"badge error\">error</span>", r.text)
    assert "admin.login" in r.text  # recent audit entries


async def test_network_page_without_wireguard(dash: Browser) -> None:
    r = await dash.open("/admin/network")
    assert r.status_code == 200 and "WireGuard is not enabled" in r.text


async def test_list_pages_run_a_fixed_number_of_queries(dash: Browser, app: object) -> None:
    """No N+1: the query count of a page does not grow with its rows."""
    db = _db(app)
    node_id, project_id = uuid.uuid4(), uuid.uuid4()
    await db.execute(
        "INSERT INTO nodes (id, name, api_url, pve_node, token_id, token_secret_sealed,"
        " total_ram_mb, vmid_range_start, vmid_range_end)"
        " VALUES (%(id)s, 'n1', 'https://n1:8006', 'pve1', 'a@pam!t', 'v1:x', 4096, 100, 200)",
        {"id": node_id},
    )
    await db.execute(
        "INSERT INTO projects (id, name, slug, template_vmid, ram_mb, cores, disk_gb, app_port)"
        " VALUES (%(id)s, 'P', 'p', 9000, 512, 1, 8, 8080)",
        {"id": project_id},
    )

    async def add_tenants(n: int, start: int) -> None:
        for i in range(start, start + n):
            await db.execute(
                "INSERT INTO tenants (id, name, subdomain, project_id, node_id, ram_mb, cores,"
                " status) VALUES (%(id)s, %(s)s, %(s)s, %(p)s, %(n)s, 512, 1, 'active')",
                {"id": uuid.uuid4(), "s": f"t{i}", "p": project_id, "n": node_id},
            )

    async def count(path: str) -> int:
        # Only the request's own queries: not the audit writer's, not a background poller's.
        with count_queries() as queries:
            assert (await dash.hx_get(path)).status_code == 200
        return queries.count

    await add_tenants(1, 0)
    few = {
        p: await count(p)
        for p in ("/admin", "/admin/tenants", "/admin/nodes", "/admin/projects", "/admin/audit")
    }
    await add_tenants(30, 1)
    many = {p: await count(p) for p in few}
    assert many == few
    assert max(few.values()) <= 8, few


async def test_a_database_outage_shows_in_the_dashboard(
    dash: Browser, app: object, database_url: str
) -> None:
    """503 in the page's own terms (banner for HTMX, error page otherwise), not JSON."""

    assert (await dash.open("/admin/tenants")).status_code == 200
    assert terminate_backends(database_url) >= 1
    r = await dash.hx_get("/admin/tenants")
    assert r.status_code == 503, r.text
    assert r.headers["hx-retarget"] == "#flash" and r.headers["retry-after"] == "5"
    assert "database cannot be reached" in r.text
    for _ in range(20):  # the pool replaces the connections it lost, one per failure
        r = await dash.open("/admin/tenants")
        if r.status_code != 503:
            break
        assert r.headers["content-type"].startswith("text/html")
        assert "database cannot be reached" in r.text
    assert r.status_code == 200
