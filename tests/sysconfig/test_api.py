"""`/api/v1/settings`: the dashboard's settings for API-only operators, through the same use
case (validation, version check, audit)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import flush_audit
from tests.sysconfig.test_service import TIERS

MISSING = "00000000-0000-4000-8000-000000000000"


def _field(r: httpx.Response) -> str:
    fields = r.json()["error"]["fields"]
    parts = [p for p in str(fields[0]["field"]).split(".") if not p.isdigit()] if fields else []
    return parts[-1] if parts else ""


async def test_read_change_and_audit(admin: httpx.AsyncClient, app: Any) -> None:
    r = await admin.get("/api/v1/settings")
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["billing_tiers"] == [] and first["ram_overcommit"] == 1.0
    assert first["base_domain"] == app.state.cp.settings.base_domain
    project = await admin.post(
        "/api/v1/projects", json={"name": "Web", "slug": "web", "template_vmid": 9000}
    )
    r = await admin.put(
        "/api/v1/settings",
        json={
            "billing_tiers": TIERS,
            "ram_overcommit": 1.5,
            "default_project": project.json()["id"],
            "version": first["version"],
        },
    )
    assert r.status_code == 200, r.text
    after = r.json()
    assert [t["name"] for t in after["billing_tiers"]] == ["basic", "pro"]
    assert after["billing_tiers"][0]["stripe_price_id"] == "price_basic1"
    assert after["ram_overcommit"] == 1.5 and after["default_project"] == project.json()["id"]
    assert after["version"] != first["version"]
    assert (await admin.get("/api/v1/settings")).json() == after
    # A stale version is refused, and changes nothing.
    r = await admin.put("/api/v1/settings", json={"ram_overcommit": 2.0,
                                                  "version": first["version"]})  # fmt: skip
    assert r.status_code == 409 and _field(r) == "version"
    assert (await admin.get("/api/v1/settings")).json()["ram_overcommit"] == 1.5
    # Keys left out keep their values; no version means last write wins.
    r = await admin.put("/api/v1/settings", json={"default_project": None})
    assert r.status_code == 200 and r.json()["default_project"] is None
    assert r.json()["ram_overcommit"] == 1.5
    await flush_audit(app)
    entries = await app.state.cp.db.fetch_all(
        "SELECT actor, details FROM audit_log WHERE action = 'settings.update' ORDER BY id"
    )
    assert len(entries) == 2 and entries[0]["actor"] == "admin-token"
    assert set(entries[0]["details"]["changed"]) == {"billing_tiers", "ram_overcommit",
                                                      "default_project"}  # fmt: skip
    assert entries[0]["details"]["changed"]["ram_overcommit"] == {"from": 1.0, "to": 1.5}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"ram_overcommit": 0.1}, "ram_overcommit"),
        ({"ram_overcommit": "lots"}, "ram_overcommit"),
        (
            {
                "billing_tiers": [
                    {"name": "Basic!", "label": "B", "max_tenants": 1, "max_ram_mb": 512}
                ]
            },
            "name",
        ),
        ({"billing_tiers": [TIERS[1], TIERS[1]]}, "billing_tiers"),
        ({"billing_tiers": [{**TIERS[0], "stripe_price_id": "prod_x"}]}, "stripe_price_id"),
        ({"base_domain": "apps.example.com"}, "base_domain"),
        ({"default_project": "not-a-uuid"}, "default_project"),
        ({"colour": "blue"}, "colour"),
        ({"version": "v" * 65}, "version"),
    ],
)
async def test_invalid_settings_name_the_field(
    admin: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    before = (await admin.get("/api/v1/settings")).json()
    r = await admin.put("/api/v1/settings", json=body)
    assert r.status_code == 422, r.text
    assert _field(r) == field, r.text
    assert (await admin.get("/api/v1/settings")).json() == before


async def test_base_domain_refusal_says_where_it_lives(admin: httpx.AsyncClient) -> None:
    r = await admin.put("/api/v1/settings", json={"base_domain": "apps.example.com"})
    assert r.status_code == 422 and "BASE_DOMAIN" in r.text


async def test_unknown_default_project_and_the_door(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    r = await admin.put("/api/v1/settings", json={"default_project": MISSING})
    assert r.status_code == 404
    assert (await client.get("/api/v1/settings")).status_code == 401
    assert (await client.put("/api/v1/settings", json={})).status_code == 401
