"""The users suites share the auth suites' fixtures (cheap Argon2, generous limits)."""

from __future__ import annotations

import httpx
import pytest

from tests.auth.conftest import settings, user  # noqa: F401
from tests.conftest import SimHandle


@pytest.fixture
async def cluster(admin: httpx.AsyncClient, app: object, pve_sim: SimHandle) -> dict:
    """An online node holding template 9000 and a default project cloned from it."""
    r = await admin.post("/api/v1/nodes", json=pve_sim.node_body("pve1", total_ram_mb=8192))
    assert r.status_code == 201, r.text
    node = r.json()
    await app.state.cp.db.execute(  # type: ignore[attr-defined]
        "UPDATE nodes SET status = 'online', templates = '{9000,9001}' WHERE id = %(id)s",
        {"id": node["id"]},
    )
    body = {
        "name": "Web",
        "slug": "web",
        "template_vmid": 9000,
        "ram_mb": 1024,
        "self_service": True,
    }
    r = await admin.post("/api/v1/projects", json={**body, "is_default": True})
    assert r.status_code == 201, r.text
    r = await admin.post(
        "/api/v1/projects",
        json={**body, "name": "Big", "slug": "big", "template_vmid": 9001, "ram_mb": 2048},
    )
    assert r.status_code == 201, r.text
    return {"node": node}
