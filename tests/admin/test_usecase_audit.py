"""One use case, one audit entry: the admin API and the dashboard write the same entry
(actor, action, details, the request's address and id) through the same service function."""

from __future__ import annotations

import httpx

from tests.admin.conftest import Browser, audit_rows
from tests.admin.test_pages import _tenant_setup
from tests.conftest import SimHandle

ENTRY = (
    "SELECT actor, action, target_id, details, client_ip, request_id FROM audit_log"
    " WHERE target_type = 'tenant' ORDER BY id"
)


async def test_tenant_entries_are_the_same_from_the_api_and_the_dashboard(
    dash: Browser, admin: httpx.AsyncClient, app: object, pve_sim: SimHandle
) -> None:
    project = await _tenant_setup(dash, app, pve_sim)
    r = await admin.post(
        "/api/v1/tenants", json={"project_id": str(project["id"]), "subdomain": "viaapi"}
    )
    assert r.status_code == 202, r.text
    by_api = r.json()
    api_request = r.headers["x-request-id"]
    r = await dash.post_form(
        "/admin/tenants", {"project_id": str(project["id"]), "subdomain": "viadash"}
    )
    assert r.status_code == 204, r.text
    dash_request = r.headers["x-request-id"]
    r = await admin.delete(f"/api/v1/tenants/{by_api['id']}")
    assert r.status_code == 202, r.text
    db = app.state.cp.db  # type: ignore[attr-defined]
    by_dash = await db.fetch_one(
        "SELECT id, node_id, vmid FROM tenants WHERE subdomain = 'viadash'"
    )
    r = await dash.post_form(f"/admin/tenants/{by_dash['id']}/delete")
    assert r.status_code == 204, r.text

    api_create, dash_create, api_delete, dash_delete = await audit_rows(app, ENTRY, expect=4)
    assert api_create["actor"] == "admin-token" and api_create["action"] == "tenant.create"
    assert api_create["request_id"] == api_request and api_create["client_ip"]
    assert api_create["details"] == {
        "subdomain": "viaapi",
        "name": None,
        "project_id": str(project["id"]),
        "owner_user_id": None,
        "node_id": by_api["node_id"],
        "vmid": by_api["vmid"],
    }
    assert dash_create["actor"].startswith("admin:") and dash_create["action"] == "tenant.create"
    assert dash_create["request_id"] == dash_request and dash_create["client_ip"]
    assert dash_create["details"] == api_create["details"] | {
        "subdomain": "viadash",
        "node_id": str(by_dash["node_id"]),
        "vmid": by_dash["vmid"],
    }
    # As before: the API's delete entry has no details, the dashboard's names the status.
    assert (api_delete["action"], api_delete["details"]) == ("tenant.delete", {})
    assert (dash_delete["action"], dash_delete["details"]) == (
        "tenant.delete",
        {"status": "deleting"},
    )
