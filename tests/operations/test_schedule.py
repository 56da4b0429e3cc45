"""Backup schedules: when they run, a missed run once, retention, deletion of the tenant."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from controlplane.operations.schedule import next_run, to_prune
from controlplane.operations.scheduler import BackupScheduler
from tests.operations.conftest import Life


def test_next_run() -> None:
    now = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)  # a Thursday
    assert next_run(now, "daily", time(3, 0), None) == datetime(2026, 12, 4, 3, 0, tzinfo=UTC)
    assert next_run(now, "daily", time(11, 0), None) == datetime(2026, 12, 3, 11, 0, tzinfo=UTC)
    assert next_run(now, "daily", time(10, 0), None) == datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
    assert next_run(now, "weekly", time(3, 0), 0) == datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
    assert next_run(now, "weekly", time(11, 0), 3) == datetime(2026, 12, 3, 11, 0, tzinfo=UTC)
    assert next_run(now, "weekly", time(9, 0), 3) == datetime(2026, 12, 10, 9, 0, tzinfo=UTC)


def _backups(*days_ago_hours: tuple[int, int]) -> list[dict]:
    base = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    return [
        {"id": f"{d}-{h}", "created_at": base - timedelta(days=d, hours=h)}
        for d, h in days_ago_hours
    ]


def test_retention_follows_proxmox_prune_rules() -> None:
    # Two a day for five days.
    backups = _backups(*[(d, h) for d in range(5) for h in (0, 6)])
    ids = lambda items: sorted(b["id"] for b in items)  # noqa: E731
    kept = lambda **keep: sorted(  # noqa: E731
        set(ids(backups)) - set(ids(to_prune(backups, **keep)))
    )
    assert kept(keep_last=3, keep_daily=0, keep_weekly=0) == ["0-0", "0-6", "1-0"]
    # keep-daily skips the days keep-last already covers, and takes the newest of each.
    assert kept(keep_last=1, keep_daily=2, keep_weekly=0) == ["0-0", "1-0", "2-0"]
    assert kept(keep_last=0, keep_daily=0, keep_weekly=1) == ["0-0"]
    assert len(to_prune(backups, keep_last=100, keep_daily=0, keep_weekly=0)) == 0


async def _schedule(life: Life, tenant_id: str, **body: object) -> dict:
    r = await life.admin.put(f"/api/v1/tenants/{tenant_id}/backup-schedule", json=body)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize(
    "body",
    [
        {"frequency": "daily", "at": "25:00"},
        {"frequency": "weekly", "at": "03:00"},
        {"frequency": "daily", "at": "03:00", "weekday": 2},
        {"frequency": "hourly", "at": "03:00"},
        {"frequency": "daily", "at": "03:00", "keep_last": 0},
        {"frequency": "daily", "at": "03:00", "keep_last": -1},
        {"frequency": "daily", "at": "03:00", "extra": 1},
    ],
)
async def test_bad_schedules_are_422(life: Life, body: dict) -> None:
    tenant = await life.active_tenant()
    r = await life.admin.put(f"/api/v1/tenants/{tenant['id']}/backup-schedule", json=body)
    assert r.status_code == 422, r.text


async def test_missed_runs_run_once_and_retention_prunes(life: Life) -> None:
    tenant = await life.active_tenant()
    schedule = await _schedule(life, tenant["id"], frequency="daily", at="03:00", keep_last=2)
    assert schedule["next_run_at"] > datetime.now(UTC).isoformat()[:10]
    scheduler = BackupScheduler(
        life.plane.worker.ctx, life.plane.app.state.cp.settings, life.plane.app.state.cp.audit
    )
    assert await scheduler.run_due() == (0, 0)  # not due yet
    for _ in range(4):
        # The control plane was "down" for ten days: the schedule is long overdue.
        await life.db.execute(
            "UPDATE backup_schedules SET next_run_at = now() - interval '10 days'"
        )
        assert await scheduler.run_due() == (1, 0)  # once, not ten times
        assert await scheduler.run_due() == (0, 0)
        await life.settle()
        # Spread the backups over days, as real ones would be.
        await life.db.execute(
            "UPDATE backups SET created_at = created_at - make_interval(days => %(d)s)"
            " WHERE status = 'ready'",
            {"d": 1},
        )
    backups = (await life.admin.get(f"/api/v1/tenants/{tenant['id']}/backups")).json()
    assert len(backups) == 2 and all(b["scheduled"] for b in backups)
    assert len([b for b in life.sim.backups.values() if b.vmid == tenant["vmid"]]) == 2
    row = await life.db.fetch_one("SELECT * FROM backup_schedules")
    assert row["last_run_at"] is not None and row["next_run_at"] > datetime.now(UTC)


async def test_busy_tenant_postpones_the_run(life: Life) -> None:
    tenant = await life.active_tenant()
    await _schedule(life, tenant["id"], frequency="daily", at="03:00")
    await life.db.execute("UPDATE backup_schedules SET next_run_at = now() - interval '1 hour'")
    r = await life.admin.post(f"/api/v1/tenants/{tenant['id']}/snapshots", json={"name": "busy"})
    assert r.status_code == 202
    scheduler = BackupScheduler(
        life.plane.worker.ctx, life.plane.app.state.cp.settings, life.plane.app.state.cp.audit
    )
    assert await scheduler.run_due() == (0, 1)
    row = await life.db.fetch_one("SELECT next_run_at FROM backup_schedules")
    assert timedelta(minutes=4) < row["next_run_at"] - datetime.now(UTC) < timedelta(minutes=6)


async def test_delete_schedule(life: Life) -> None:
    tenant = await life.active_tenant()
    base = f"/api/v1/tenants/{tenant['id']}/backup-schedule"
    assert (await life.admin.get(base)).json() is None
    await _schedule(life, tenant["id"], frequency="weekly", at="04:30", weekday=6)
    assert (await life.admin.get(base)).json()["weekday"] == 6
    assert (await life.admin.delete(base)).status_code == 204
    assert (await life.admin.get(base)).json() is None


async def test_deleting_a_tenant_deletes_its_backups(life: Life) -> None:
    tenant = await life.active_tenant()
    await life.run("POST", f"/api/v1/tenants/{tenant['id']}/backups")
    await life.run("POST", f"/api/v1/tenants/{tenant['id']}/snapshots", json={"name": "s1"})
    assert (await life.admin.delete(f"/api/v1/tenants/{tenant['id']}")).status_code == 202
    await life.settle()
    assert not life.sim.backups
    assert await life.db.fetch_val("SELECT count(*) FROM backups") == 0
    assert await life.db.fetch_val("SELECT count(*) FROM snapshots") == 0


async def test_project_can_keep_backups_after_the_delete(life: Life) -> None:
    r = await life.admin.put(
        f"/api/v1/projects/{life.plane.project['id']}", json={"keep_backups_days": 7}
    )
    assert r.status_code == 200 and r.json()["keep_backups_days"] == 7
    tenant = await life.active_tenant()
    await life.run("POST", f"/api/v1/tenants/{tenant['id']}/backups")
    assert (await life.admin.delete(f"/api/v1/tenants/{tenant['id']}")).status_code == 202
    await life.settle()
    row = await life.db.fetch_one("SELECT * FROM backups")
    assert row["expires_at"] - datetime.now(UTC) > timedelta(days=6)
    assert len(life.sim.backups) == 1
    scheduler = BackupScheduler(
        life.plane.worker.ctx, life.plane.app.state.cp.settings, life.plane.app.state.cp.audit
    )
    assert await scheduler.sweep_expired() == 0
    await life.db.execute("UPDATE backups SET expires_at = now() - interval '1 minute'")
    assert await scheduler.sweep_expired() == 1
    assert not life.sim.backups
    assert await life.db.fetch_val("SELECT count(*) FROM backups") == 0
