"""`controlplane.sysconfig.service`: defaults, validation, version check, default project."""

from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError

from controlplane.errors import Conflict, NotFound
from controlplane.projects import service as projects
from controlplane.projects.schemas import ProjectCreate
from controlplane.sysconfig import service
from controlplane.sysconfig.schemas import SystemSettingsUpdate

TIERS = [
    {
        "name": "basic",
        "label": "Basic",
        "max_tenants": 1,
        "max_ram_mb": 1024,
        "price_cents": 500,
        "stripe_price_id": "price_basic1",
    },
    {"name": "pro", "label": "Pro", "max_tenants": 5, "max_ram_mb": 8192},
]


@pytest.fixture
def db(app: object):  # type: ignore[no-untyped-def]
    return app.state.cp.db  # type: ignore[attr-defined]


async def test_defaults_from_a_fresh_database(db) -> None:  # type: ignore[no-untyped-def]
    values = await service.get_settings(db)
    assert values == {
        "default_project": None,
        "ram_overcommit": 1.0,
        "billing_tiers": [],
    }
    assert await service.get_value(db, "ram_overcommit") == 1.0
    assert await service.get_value(db, "no_such_key") is None
    assert await service.get_value(db, "no_such_key", 7) == 7


async def test_update_and_read_back(db) -> None:  # type: ignore[no-untyped-def]
    before, after = await service.update_settings(
        db,
        SystemSettingsUpdate.model_validate({"ram_overcommit": 1.5, "billing_tiers": TIERS}),
    )
    assert before["ram_overcommit"] == 1.0
    assert "base_domain" not in after  # BASE_DOMAIN in the environment is the one truth
    assert after["ram_overcommit"] == 1.5
    assert [t["name"] for t in after["billing_tiers"]] == ["basic", "pro"]
    assert after["billing_tiers"][1]["stripe_price_id"] is None
    assert await service.get_value(db, "base_domain", "the environment's") == "the environment's"
    raw = await db.fetch_val("SELECT value FROM system_settings WHERE key = 'ram_overcommit'")
    assert raw == 1.5
    # null goes back to the default; the overcommit row stays for SQL readers
    _, after = await service.update_settings(
        db, SystemSettingsUpdate.model_validate({"ram_overcommit": None})
    )
    assert after["ram_overcommit"] == 1.0
    assert (
        await db.fetch_val("SELECT value FROM system_settings WHERE key = 'ram_overcommit'") == 1.0
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"base_domain": "not a domain"}, "base_domain"),
        ({"base_domain": "10.0.0.1"}, "base_domain"),
        # Well formed, but the base domain is BASE_DOMAIN in the environment: refused.
        ({"base_domain": "apps.example.com"}, "base_domain"),
        ({"ram_overcommit": 0.1}, "ram_overcommit"),
        ({"ram_overcommit": "2"}, "ram_overcommit"),
        ({"billing_tiers": [{**TIERS[0], "max_tenants": -1}]}, "billing_tiers"),
        ({"billing_tiers": [{**TIERS[0], "stripe_price_id": "prod_x"}]}, "billing_tiers"),
        ({"billing_tiers": [TIERS[0], TIERS[0]]}, "billing_tiers"),
        ({"default_project": "nope"}, "default_project"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_invalid_values_name_the_field(body: dict, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        SystemSettingsUpdate.model_validate(body)
    assert info.value.errors()[0]["loc"][0] == field


async def test_default_project_is_the_projects_flag(db) -> None:  # type: ignore[no-untyped-def]
    a = await projects.create_project(db, ProjectCreate(name="A", slug="a", template_vmid=9000))
    b = await projects.create_project(
        db, ProjectCreate(name="B", slug="b", template_vmid=9001, is_default=True)
    )
    assert await service.get_value(db, "default_project") == b["id"]
    _, after = await service.update_settings(db, SystemSettingsUpdate(default_project=a["id"]))
    assert after["default_project"] == a["id"]
    assert (await projects.find_project(db, None))["id"] == a["id"]
    _, after = await service.update_settings(
        db, SystemSettingsUpdate.model_validate({"default_project": None})
    )
    assert after["default_project"] is None
    with pytest.raises(NotFound):
        await projects.find_project(db, None)
    with pytest.raises(NotFound):
        await service.update_settings(db, SystemSettingsUpdate(default_project=uuid.uuid4()))


async def test_stale_version_is_refused(db) -> None:  # type: ignore[no-untyped-def]
    version = service.version_of(await service.get_settings(db))
    await service.update_settings(
        db, SystemSettingsUpdate(ram_overcommit=2.0), expected_version=version
    )
    with pytest.raises(Conflict) as info:
        await service.update_settings(
            db, SystemSettingsUpdate(ram_overcommit=3.0), expected_version=version
        )
    assert info.value.field == "version"
    assert await service.get_value(db, "ram_overcommit") == 2.0


async def test_a_base_domain_saved_by_an_older_version_is_ignored(db) -> None:  # type: ignore[no-untyped-def]
    """It used to be saved (and then ignored by ask, routes and SSO): now nobody reads it."""
    await db.execute(
        "INSERT INTO system_settings (key, value) VALUES ('base_domain', '\"old.example\"')"
    )
    assert "base_domain" not in await service.get_settings(db)
