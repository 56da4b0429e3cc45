"""The tenant page's lifecycle panel: snapshots, backups, the schedule, restore, rebuild,
resize and restart through the dashboard's forms, against the simulator and the workers."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from tests.admin.conftest import Browser
from tests.admin.test_pages import _field_error
from tests.operations.conftest import Life, make_operations
from tests.provisioner.conftest import Plane, plane

__all__ = ["plane"]


@pytest.fixture
async def life(plane: Plane) -> Life:
    return Life(plane, make_operations(plane))


def _form_error(html: str, card: str) -> str:
    """The messages at the top of the forms (or list) in the card with id `card`."""
    section = html.split(f'id="{card}"', 1)[1].split('class="card"', 1)[0]
    found = re.findall(r'class="form-error" role="alert"[^>]*>([^<]*)<', section)
    assert found, f"no form error slot in {card}"
    return " ".join(found)


async def _audited(life: Life, action: str) -> list[dict[str, Any]]:
    from tests.conftest import flush_audit

    await flush_audit(life.plane.app)
    return await life.db.fetch_all(
        "SELECT actor, details FROM audit_log WHERE action = %(a)s", {"a": action}
    )


async def test_snapshots_through_the_panel(dash: Browser, life: Life) -> None:
    t = await life.active_tenant("shop")
    base = f"/admin/tenants/{t['id']}"
    page = await dash.open(base)
    assert f'hx-get="{base}/lifecycle"' in page.text
    r = await dash.hx_get(f"{base}/lifecycle")
    assert r.status_code == 200 and "No snapshots." in r.text and "No backups." in r.text

    r = await dash.post_form(f"{base}/snapshots", {"snap_name": "first", "snap_description": "x"})
    assert r.status_code == 200, r.text
    assert r.headers["hx-trigger"] == "tenants-changed"
    assert "snapshot create" in r.text and 'data-snapshot="first"' in r.text
    await life.settle()
    r = await dash.hx_get(f"{base}/lifecycle")
    assert re.search(r'data-snapshot="first">.*?badge ready', r.text, re.S), r.text
    assert "No operation" not in r.text and "succeeded" in r.text
    (entry,) = await _audited(life, "tenant.snapshot_create")
    assert entry["actor"].startswith("admin:") and entry["details"]["name"] == "first"

    # The same name again: 409 next to the name; a name Proxmox refuses: 422 there.
    r = await dash.post_form(f"{base}/snapshots", {"snap_name": "first"})
    assert r.status_code == 409 and "exists" in _field_error(r.text, "snap_name")
    assert 'value="first"' in r.text  # what was typed stays
    r = await dash.post_form(f"{base}/snapshots", {"snap_name": "1bad"})
    assert r.status_code == 422 and "letters" in _field_error(r.text, "snap_name")
    r = await dash.post_form(f"{base}/snapshots", {"snap_name": "current"})
    assert r.status_code == 422 and "reserves" in _field_error(r.text, "snap_name")

    # Roll back, then delete, each with its confirmation in the page.
    assert f'hx-post="{base}/snapshots/first/rollback"' in r.text and "hx-confirm" in r.text
    assert (await dash.post_form(f"{base}/snapshots/first/rollback")).status_code == 200
    await life.settle()
    assert (await life.plane.tenant(t["id"]))["status"] == "active"
    assert (await dash.post_form(f"{base}/snapshots/first/delete")).status_code == 200
    await life.settle()
    assert not await life.db.fetch_all("SELECT * FROM snapshots")
    assert (await dash.post_form(f"{base}/snapshots/first/explode")).status_code == 404
    r = await dash.post_form(f"{base}/snapshots/first/delete")
    assert r.status_code == 404 and r.headers["hx-retarget"] == "#flash"


async def test_backups_schedule_and_restore(dash: Browser, life: Life) -> None:
    t = await life.active_tenant("shop")
    base = f"/admin/tenants/{t['id']}"
    await dash.open(base)
    r = await dash.post_form(f"{base}/backups")
    assert r.status_code == 200 and "backup create" in r.text
    # While it runs, a second change is refused with the busy message in its form.
    r = await dash.post_form(f"{base}/restart")
    assert r.status_code == 409 and "busy" in _form_error(r.text, "lifecycle-manage")
    await life.settle()
    backup = await life.db.fetch_one("SELECT * FROM backups")
    assert backup["status"] == "ready"

    # Restore asks for the subdomain.
    r = await dash.hx_get(f"{base}/lifecycle")
    assert f'<option value="{backup["id"]}"' in r.text
    form = {"backup_id": str(backup["id"]), "restore_confirm": "nope"}
    r = await dash.post_form(f"{base}/restore", form)
    assert r.status_code == 422 and "shop" in _field_error(r.text, "restore_confirm")
    r = await dash.post_form(f"{base}/restore", {"restore_confirm": "shop"})
    assert r.status_code == 422 and _field_error(r.text, "backup_id")
    r = await dash.post_form(
        f"{base}/restore", {"backup_id": str(uuid.uuid4()), "restore_confirm": "shop"}
    )
    assert r.status_code == 404  # no such backup: the banner
    r = await dash.post_form(f"{base}/restore", {**form, "restore_confirm": "shop"})
    assert r.status_code == 200 and "backup restore" in r.text
    await life.settle()
    op = await life.db.fetch_one("SELECT * FROM operations WHERE kind = 'backup_restore'")
    assert op["status"] == "succeeded", op

    # The schedule: refusals named, then set, shown, and stopped.
    sched = {"frequency": "weekly", "at": "04:30", "keep_last": "2"}
    r = await dash.post_form(f"{base}/backup-schedule", sched)
    assert r.status_code == 422 and "weekday" in _form_error(r.text, "lifecycle-schedule")
    r = await dash.post_form(f"{base}/backup-schedule", {**sched, "at": "25:00", "weekday": "2"})
    assert r.status_code == 422 and "HH:MM" in _field_error(r.text, "at")
    r = await dash.post_form(f"{base}/backup-schedule", {**sched, "keep_last": "-1"})
    assert r.status_code == 422 and _field_error(r.text, "keep_last")
    r = await dash.post_form(f"{base}/backup-schedule", {**sched, "weekday": "2"})
    assert r.status_code == 200, r.text
    assert "Weekly on Wednesday at 04:30 UTC" in r.text
    row = await life.db.fetch_one("SELECT * FROM backup_schedules")
    assert row["weekday"] == 2 and row["keep_last"] == 2
    r = await dash.post_form(f"{base}/backup-schedule/delete")
    assert r.status_code == 200 and "No scheduled backups." in r.text
    assert not await life.db.fetch_all("SELECT * FROM backup_schedules")

    assert (await dash.post_form(f"{base}/backups/{backup['id']}/delete")).status_code == 200
    await life.settle()
    assert not await life.db.fetch_all("SELECT * FROM backups WHERE status <> 'deleted'")
    (entry,) = await _audited(life, "tenant.backup_restore")
    assert entry["actor"].startswith("admin:")


async def test_resize_rebuild_restart(dash: Browser, life: Life) -> None:
    t = await life.active_tenant("shop")
    base = f"/admin/tenants/{t['id']}"
    await dash.open(base)
    await life.settle()
    disk = (await life.plane.tenant(t["id"]))["disk_gb"]

    assert disk is not None and disk > 1
    r = await dash.post_form(f"{base}/resize", {"disk_gb": "1", "ram_mb": "", "cores": ""})
    assert r.status_code == 409 and "shrink" in _field_error(r.text, "disk_gb")
    r = await dash.post_form(f"{base}/resize", {"cores": "0"})
    assert r.status_code == 422 and _field_error(r.text, "cores")
    r = await dash.post_form(f"{base}/resize", {})
    assert r.status_code == 422 and "at least one" in _form_error(r.text, "lifecycle-manage")
    r = await dash.post_form(f"{base}/resize", {"cores": "2", "ram_mb": "768"})
    assert r.status_code == 200, r.text
    await life.settle()
    after = await life.plane.tenant(t["id"])
    assert (after["cores"], after["ram_mb"]) == (2, 768)
    assert await life.plane.ledger_exact()

    r = await dash.post_form(f"{base}/rebuild", {"rebuild_confirm": "other"})
    assert r.status_code == 422 and "shop" in _field_error(r.text, "rebuild_confirm")
    r = await dash.post_form(f"{base}/rebuild", {"rebuild_confirm": "shop"}, htmx=False)
    assert r.status_code == 303 and r.headers["location"] == base
    await life.settle()
    assert (await life.plane.tenant(t["id"]))["status"] == "active"

    assert (await dash.post_form(f"{base}/restart")).status_code == 200
    await life.settle()
    kinds = await life.db.fetch_all("SELECT kind, status FROM operations ORDER BY created_at")
    assert [(k["kind"], k["status"]) for k in kinds] == [
        ("resize", "succeeded"),
        ("rebuild", "succeeded"),
        ("restart", "succeeded"),
    ]


async def test_the_panel_refuses_without_csrf_and_for_a_missing_tenant(
    dash: Browser, life: Life
) -> None:
    t = await life.active_tenant("shop")
    base = f"/admin/tenants/{t['id']}"
    await dash.open(base)
    for path, data in (
        ("snapshots", {"snap_name": "nope"}),
        ("backups", {}),
        ("restart", {}),
        ("rebuild", {"rebuild_confirm": "shop"}),
    ):
        r = await dash.http.post(f"{base}/{path}", data=data, headers={"HX-Request": "true"})
        assert r.status_code == 403, (path, r.text)
    assert not await life.db.fetch_all("SELECT * FROM operations")
    missing = f"/admin/tenants/{uuid.uuid4()}"
    assert (await dash.hx_get(f"{missing}/lifecycle")).status_code == 404
    r = await dash.post_form(f"{missing}/snapshots", {"snap_name": "x1"})
    assert r.status_code == 404 and r.headers["hx-retarget"] == "#flash"
    r = await dash.post_form(f"{missing}/backup-schedule/delete")
    assert r.status_code == 404
