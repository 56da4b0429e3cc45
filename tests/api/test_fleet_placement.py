"""Placement refusals up front: maintenance mode, the admin's node override onto a node
without the template (or without SSH for bootstrap commands), SSH-only placement for
projects with bootstrap commands."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.test_tenants import _online_node, _project
from tests.conftest import SimHandle, flush_audit


def _field(r: httpx.Response) -> str:
    return str(r.json()["error"]["fields"][0]["field"])


async def _tenant(admin: httpx.AsyncClient, project: dict[str, Any], sub: str, **kw: Any) -> Any:
    return await admin.post(
        "/api/v1/tenants", json={"project_id": project["id"], "subdomain": sub, **kw}
    )


async def test_maintenance_stops_new_placements_at_once(
    admin: httpx.AsyncClient, app: Any, pve_sim: SimHandle
) -> None:
    roomy = await _online_node(admin, app, pve_sim, name="roomy", ram=65536)
    small = await _online_node(admin, app, pve_sim, name="small", ram=8192)
    project = await _project(admin)
    first = await _tenant(admin, project, "before")
    assert first.json()["node_id"] == roomy["id"]
    url = f"/api/v1/nodes/{roomy['id']}/maintenance"
    r = await admin.post(url, json={"enabled": True, "reason": "kernel update"})
    assert r.status_code == 200, r.text
    node = r.json()
    assert node["maintenance"] is True and node["maintenance_reason"] == "kernel update"
    since = node["maintenance_since"]
    assert since is not None
    # The most free RAM is on `roomy`, but it is in maintenance: the tenant goes to `small`.
    r = await _tenant(admin, project, "during")
    assert r.status_code == 202 and r.json()["node_id"] == small["id"]
    # The override onto a node in maintenance is a 409 naming node_id.
    r = await _tenant(admin, project, "forced", node_id=roomy["id"])
    assert r.status_code == 409 and _field(r) == "node_id"
    # Its tenants keep running (nothing about them changed).
    kept = (await admin.get(f"/api/v1/tenants/{first.json()['id']}")).json()
    assert kept["node_id"] == roomy["id"] and kept["status"] == "provisioning"
    # Saying it again keeps the first `since`; off clears it.
    r = await admin.post(url, json={"enabled": True, "reason": "still updating"})
    assert r.json()["maintenance_since"] == since
    await admin.post(f"/api/v1/nodes/{small['id']}/maintenance", json={"enabled": True})
    r = await _tenant(admin, project, "nowhere")
    assert r.status_code == 409 and "maintenance" in r.json()["error"]["message"]
    r = await admin.post(url, json={"enabled": False})
    assert r.json()["maintenance"] is False and r.json()["maintenance_since"] is None
    assert r.json()["maintenance_reason"] is None
    r = await _tenant(admin, project, "after")
    assert r.status_code == 202 and r.json()["node_id"] == roomy["id"]
    await flush_audit(app)
    actions = await app.state.cp.db.fetch_all(
        "SELECT details FROM audit_log WHERE action = 'node.maintenance' ORDER BY id"
    )
    assert actions[0]["details"] == {"enabled": True, "reason": "kernel update"}


async def test_maintenance_refusals(
    admin: httpx.AsyncClient, client: httpx.AsyncClient, app: Any, pve_sim: SimHandle
) -> None:
    node = await _online_node(admin, app, pve_sim)
    url = f"/api/v1/nodes/{node['id']}/maintenance"
    for body, field in (({"enabled": "yes"}, "enabled"), ({}, "enabled"),
                        ({"enabled": True, "reason": "a\nb"}, "reason"),
                        ({"enabled": True, "reason": "x" * 201}, "reason")):  # fmt: skip
        r = await admin.post(url, json=body)
        assert r.status_code == 422 and _field(r).endswith(field), r.text
    missing = "/api/v1/nodes/00000000-0000-4000-8000-000000000000/maintenance"
    assert (await admin.post(missing, json={"enabled": True})).status_code == 404
    assert (await client.post(url, json={"enabled": True})).status_code == 401


async def test_override_onto_a_node_without_the_template(
    admin: httpx.AsyncClient, app: Any, pve_sim: SimHandle
) -> None:
    await _online_node(admin, app, pve_sim, name="with", templates=(9000,))
    other = await _online_node(admin, app, pve_sim, name="without", templates=(9100,))
    project = await _project(admin)
    r = await _tenant(admin, project, "wrong", node_id=other["id"])
    assert r.status_code == 422 and _field(r) == "node_id"
    assert "template 9000" in r.json()["error"]["message"]
    assert (await admin.get("/api/v1/tenants")).json()["total"] == 0
    n = (await admin.get(f"/api/v1/nodes/{other['id']}")).json()
    assert n["allocated_ram_mb"] == 0


async def test_bootstrap_commands_place_only_on_nodes_with_ssh(
    admin: httpx.AsyncClient, app: Any, pve_sim: SimHandle
) -> None:
    # The node without SSH has more room, so without the rule it would be chosen.
    bare = await _online_node(admin, app, pve_sim, name="bare", ram=65536)
    sshless = await _project(admin, bootstrap_commands=["echo hi"])
    r = await _tenant(admin, sshless, "nossh")
    assert r.status_code == 409 and "SSH" in r.json()["error"]["message"]
    r = await _tenant(admin, sshless, "forced", node_id=bare["id"])
    assert r.status_code == 422 and _field(r) == "node_id" and "SSH" in r.text
    with_ssh = await _online_node(admin, app, pve_sim, name="ssh", ram=8192)
    await app.state.cp.db.execute(
        "UPDATE nodes SET ssh_host = '127.0.0.1', ssh_private_key_sealed = 'v1:x'"
        " WHERE id = %(id)s",
        {"id": with_ssh["id"]},
    )
    r = await _tenant(admin, sshless, "withssh")
    assert r.status_code == 202 and r.json()["node_id"] == with_ssh["id"]
    # A project without commands still goes where the most RAM is free.
    plain = await _project(admin, slug="plain", name="Plain")
    r = await _tenant(admin, plain, "plain")
    assert r.status_code == 202 and r.json()["node_id"] == bare["id"]
