"""The owner's routes: the same operations, scoped to their tenants and their tier."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from controlplane.config import Settings
from tests.auth.conftest import bearer, client_for, login, register, user_settings
from tests.operations.conftest import Life


@pytest.fixture
def settings(database_url: str) -> Settings:
    return user_settings(database_url, billing_free_max_snapshots=2, billing_free_max_backups=1)


async def _user(app: Any, email: str) -> httpx.AsyncClient:
    anonymous = client_for(app)
    await register(anonymous, email)
    tokens = await login(anonymous, email)
    await anonymous.aclose()
    return client_for(app, **bearer(tokens["access_token"]))


async def _user_tenant(life: Life, user: httpx.AsyncClient, subdomain: str) -> dict[str, Any]:
    r = await life.admin.put(
        f"/api/v1/projects/{life.plane.project['id']}", json={"self_service": True}
    )
    assert r.status_code == 200, r.text
    r = await user.post("/api/v1/user/tenants", json={"subdomain": subdomain, "project": "web"})
    assert r.status_code == 202, r.text
    await life.settle()
    return r.json()


async def test_owner_runs_operations_and_sees_no_internals(life: Life) -> None:
    ada = await _user(life.plane.app, "ada@example.com")
    tenant = await _user_tenant(life, ada, "adas")
    base = f"/api/v1/user/tenants/{tenant['id']}"
    r = await ada.post(f"{base}/snapshots", json={"name": "mine"})
    assert r.status_code == 202, r.text
    op = r.json()
    assert r.headers["location"] == f"/api/v1/user/operations/{op['id']}"
    assert "upids" not in op and "error" not in op
    await life.settle()
    r = await ada.get(f"/api/v1/user/operations/{op['id']}")
    assert r.status_code == 200 and r.json()["status"] == "succeeded"
    assert [s["name"] for s in (await ada.get(f"{base}/snapshots")).json()] == ["mine"]
    r = await ada.post(f"{base}/backups")
    assert r.status_code == 202
    await life.settle()
    backups = (await ada.get(f"{base}/backups")).json()
    assert len(backups) == 1 and "volid" not in backups[0] and "storage" not in backups[0]
    r = await ada.get(f"/api/v1/user/tenants/{tenant['id']}")
    assert r.json()["operation"] is None and r.json()["disk_gb"]


async def test_someone_elses_tenant_is_404(life: Life) -> None:
    ada = await _user(life.plane.app, "ada@example.com")
    bob = await _user(life.plane.app, "bob@example.com")
    tenant = await _user_tenant(life, ada, "adas")
    r = await ada.post(f"/api/v1/user/tenants/{tenant['id']}/snapshots", json={"name": "mine"})
    op = r.json()
    base = f"/api/v1/user/tenants/{tenant['id']}"
    for method, path, body in (
        ("GET", f"{base}/snapshots", None),
        ("POST", f"{base}/snapshots", {"name": "theirs"}),
        ("POST", f"{base}/restart", None),
        ("POST", f"{base}/rebuild", {"confirm": "adas"}),
        ("GET", f"{base}/backups", None),
        ("GET", f"{base}/backup-schedule", None),
        ("GET", f"/api/v1/user/operations/{op['id']}", None),
    ):
        r = await bob.request(method, path, json=body)
        assert r.status_code == 404, (path, r.text)
    anonymous = client_for(life.plane.app)
    assert (await anonymous.get(f"{base}/snapshots")).status_code == 401
    # An admin token is not a user: the user routes want a user.
    assert (await life.admin.get(f"{base}/snapshots")).status_code in (401, 403)


async def test_tier_caps_are_402_naming_the_cap(life: Life) -> None:
    ada = await _user(life.plane.app, "ada@example.com")
    tenant = await _user_tenant(life, ada, "adas")
    base = f"/api/v1/user/tenants/{tenant['id']}"
    for name in ("one", "two"):
        assert (await ada.post(f"{base}/snapshots", json={"name": name})).status_code == 202
        await life.settle()
    r = await ada.post(f"{base}/snapshots", json={"name": "three"})
    assert r.status_code == 402, r.text
    assert r.json()["error"]["fields"][0]["field"] == "max_snapshots"
    assert (await ada.post(f"{base}/backups")).status_code == 202
    await life.settle()
    r = await ada.post(f"{base}/backups")
    assert r.status_code == 402 and r.json()["error"]["fields"][0]["field"] == "max_backups"
    # A schedule that keeps more than the cap is refused too.
    r = await ada.put(
        f"{base}/backup-schedule", json={"frequency": "daily", "at": "03:00", "keep_last": 3}
    )
    assert r.status_code == 402
    # RAM beyond the tier (free: 4096 MB in all).
    r = await ada.post(f"{base}/resize", json={"ram_mb": 8192})
    assert r.status_code == 402 and r.json()["error"]["fields"][0]["field"] == "ram_mb"
    # Deleting a snapshot frees its place.
    assert (await ada.delete(f"{base}/snapshots/one")).status_code == 202
    await life.settle()
    assert (await ada.post(f"{base}/snapshots", json={"name": "three"})).status_code == 202
