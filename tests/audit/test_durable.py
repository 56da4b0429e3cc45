"""Audit entries of tenant state changes are written in the change's own transaction.

The queue's writer is stopped here (it never writes), so every entry found in the table was
written with its change; a kill -9 after the answer could not have lost it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from controlplane.audit.writer import AuditLog
from tests.conftest import ADMIN_TOKEN, SimHandle, make_settings, seed_cluster


@pytest.fixture
async def stalled_app(database_url: str, pve_sim: SimHandle) -> AsyncIterator[Any]:
    from controlplane.app import create_app
    from controlplane.db import Database

    db = await Database.connect(database_url, min_size=1, max_size=2)
    stalled = AuditLog(db)  # never started: what is queued stays queued
    app = create_app(make_settings(database_url, run_workers=False), overrides={"audit": stalled})
    try:
        async with app.router.lifespan_context(app):
            yield app
    finally:
        await db.close()


async def _entries(app: Any) -> list[dict[str, Any]]:
    return await app.state.cp.db.fetch_all(  # type: ignore[no-any-return]
        "SELECT actor, action, target_id, details FROM audit_log"
        " WHERE target_type = 'tenant' ORDER BY id"
    )


async def test_create_and_transitions_are_in_the_log_without_the_queue(
    stalled_app: Any, pve_sim: SimHandle
) -> None:
    transport = httpx.ASGITransport(app=stalled_app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    ) as admin:
        cluster = await seed_cluster(
            admin, stalled_app, pve_sim, node_ram_mb=8192, web_ram_mb=512, big_ram_mb=1024
        )
        queued = stalled_app.state.cp.audit.depth  # the node's and projects' entries
        r = await admin.post("/api/v1/tenants", json={"subdomain": "durable"})
        assert r.status_code == 202, r.text
        tenant = r.json()
        # A tenant the workers would make active; here the test does, so it can suspend.
        await stalled_app.state.cp.db.execute(
            "UPDATE tenants SET status = 'active' WHERE id = %(id)s", {"id": tenant["id"]}
        )
        r = await admin.post(f"/api/v1/tenants/{tenant['id']}/suspend")
        assert r.status_code == 202, r.text
        r = await admin.put(f"/api/v1/tenants/{tenant['id']}", json={"name": "Renamed"})
        assert r.status_code == 200, r.text
    entries = await _entries(stalled_app)
    assert [e["action"] for e in entries] == ["tenant.create", "tenant.suspend", "tenant.update"]
    assert {e["target_id"] for e in entries} == {tenant["id"]}
    assert {e["actor"] for e in entries} == {"admin-token"}
    created = entries[0]["details"]
    assert created["node_id"] == cluster["node"]["id"] and created["vmid"] == tenant["vmid"]
    assert created["subdomain"] == "durable"
    assert entries[1]["details"] == {"status": "suspending"}
    assert stalled_app.state.cp.audit.depth == queued  # none of them went through the queue


async def test_a_refused_change_writes_no_entry(stalled_app: Any, pve_sim: SimHandle) -> None:
    transport = httpx.ASGITransport(app=stalled_app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    ) as admin:
        await seed_cluster(
            admin, stalled_app, pve_sim, node_ram_mb=8192, web_ram_mb=512, big_ram_mb=1024
        )
        r = await admin.post("/api/v1/tenants", json={"subdomain": "once"})
        assert r.status_code == 202
        r = await admin.post("/api/v1/tenants", json={"subdomain": "once"})
        assert r.status_code == 409
        tenant_id = (await admin.get("/api/v1/tenants")).json()["items"][0]["id"]
        r = await admin.post(f"/api/v1/tenants/{tenant_id}/resume")  # provisioning: 409
        assert r.status_code == 409
    assert [e["action"] for e in await _entries(stalled_app)] == ["tenant.create"]
