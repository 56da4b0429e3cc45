"""The usage collector against the simulator: one call per subject per interval, the
archives read in turns, idempotent upserts, retention, and what a crash costs."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from controlplane.usage.archives import ARCHIVES, next_archive
from tests.provisioner.conftest import Plane
from tests.usage.conftest import active_tenants, collector

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_next_archive_fills_new_subjects_finest_first_then_the_coarsest_due() -> None:
    never = dict.fromkeys(("hour", "day", "week", "month"))
    assert next_archive(never, NOW) == "hour"
    assert next_archive({**never, "hour": NOW}, NOW) == "day"
    fresh = dict.fromkeys(("hour", "day", "week", "month"), NOW)
    assert next_archive(fresh, NOW) == "hour"  # nothing coarser gained a point
    later = NOW + timedelta(minutes=31)
    assert next_archive(fresh, later) == "day"
    assert next_archive(fresh, NOW + timedelta(hours=13)) == "month"  # the coarsest due first
    assert (
        next_archive({**fresh, "month": NOW + timedelta(hours=13)}, NOW + timedelta(hours=13))
        == "week"
    )


async def _stored(p: Plane, table: str = "tenant_usage") -> dict[tuple[str, str], int]:
    rows = await p.db.fetch_all(
        f"SELECT {'tenant_id' if table == 'tenant_usage' else 'node_id'}::text AS id, timeframe,"
        f" count(*) AS n FROM {table} GROUP BY 1, 2"
    )
    return {(r["id"], r["timeframe"]): r["n"] for r in rows}


async def test_one_rrddata_call_per_tenant_and_node_per_interval(plane: Plane) -> None:
    tenants = await active_tenants(plane, "alpha", "beta", "gamma")
    suspended = (await active_tenants(plane, "delta"))[0]
    r = await plane.admin.post(f"/api/v1/tenants/{suspended['id']}/suspend")
    assert r.status_code == 202
    await plane.worker.run_until_idle()
    c, counting = collector(plane, interval=3600)
    assert await c.collect_once() == 3 + 2  # three active tenants, two online nodes
    vmids = {str(t["vmid"]) for t in tenants}
    assert counting.calls == {
        **{("container_rrddata", v): 1 for v in vmids},
        ("node_rrddata", "pve1"): 1,
        ("node_rrddata", "pve2"): 1,
    }
    # Within the interval nothing is due, however often the loop comes round.
    for _ in range(3):
        assert await c.collect_once() == 0
    assert counting.total() == 5
    stored = await _stored(plane)
    assert {k for k in stored} == {(t["id"], "hour") for t in tenants}
    assert all(0 < n <= 70 for n in stored.values())
    assert {k[1] for k in await _stored(plane, "node_usage")} == {"hour"}


async def test_two_replicas_share_one_interval(plane: Plane) -> None:
    await active_tenants(plane, *(f"t{i}" for i in range(6)))
    one, a = collector(plane, interval=3600)
    two, b = collector(plane, interval=3600)
    done = await asyncio.gather(one.collect_once(), two.collect_once())
    assert sum(done) == 6 + 2
    assert a.total() + b.total() == 8  # each subject read once, by one of them


async def test_stored_points_are_what_proxmox_said(plane: Plane) -> None:
    (t,) = await active_tenants(plane, "alpha")
    plane.sim.sim.set_load(t["vmid"], cpu=0.5, netin=10_000.0)  # type: ignore[attr-defined]
    c, _ = collector(plane)
    await c.collect_once()
    node = next(n for n in plane.nodes if n["id"] == t["node_id"])
    client = plane.app.state.cp.proxmox.client(
        await plane.db.fetch_one("SELECT * FROM nodes WHERE id = %(id)s", {"id": node["id"]})
    )
    truth = {p["time"]: p for p in await client.container_rrddata(node["pve_node"], t["vmid"])}
    rows = await plane.db.fetch_all(
        "SELECT extract(epoch FROM at)::bigint AS t, cpu, netin, maxmem FROM tenant_usage"
        " WHERE tenant_id = %(id)s AND timeframe = 'hour' ORDER BY at",
        {"id": t["id"]},
    )
    assert len(rows) >= 60  # two hours of history: every point of the hour archive
    for row in rows:
        assert row["cpu"] == truth[row["t"]]["cpu"] and row["netin"] == truth[row["t"]]["netin"]
        assert row["maxmem"] == 512 * 2**20
    assert max(r["cpu"] for r in rows) > 0.3  # it follows the container's load


async def test_archives_are_read_in_turns(plane: Plane) -> None:
    (t,) = await active_tenants(plane, "alpha", history_s=40 * 86400)
    c, counting = collector(plane, interval=0.1)
    order = []
    for _ in range(5):
        await plane.db.execute("UPDATE usage_sources SET claimed_at = now() - interval '1 hour'")
        await c.collect_once()
        row = await plane.db.fetch_one(
            "SELECT * FROM usage_sources WHERE subject_id = %(id)s", {"id": t["id"]}
        )
        assert row is not None
        order.append(max(("hour", "day", "week", "month"), key=lambda k: row[f"{k}_at"] or NOW))
    assert order == ["hour", "day", "week", "month", "hour"]
    assert set((await _stored(plane)).keys()) == {
        (t["id"], tf) for tf in ("hour", "day", "week", "month")
    }
    # A day later than its last read, the day archive is due again before the hour's.
    await plane.db.execute(
        "UPDATE usage_sources SET claimed_at = now() - interval '1 hour',"
        " day_at = now() - interval '31 minutes'"
    )
    before = counting.total()
    await c.collect_once()
    assert counting.total() == before + 3  # the tenant and the two nodes, one call each
    row = await plane.db.fetch_one(
        "SELECT day_at > now() - interval '1 minute' AS fresh FROM usage_sources"
        " WHERE subject_id = %(id)s",
        {"id": t["id"]},
    )
    assert row is not None and row["fresh"]


async def test_upserts_are_idempotent_and_retention_follows_the_archive(plane: Plane) -> None:
    (t,) = await active_tenants(plane, "alpha")
    c, _ = collector(plane)
    await c.collect_once()
    count = "SELECT count(*) FROM tenant_usage WHERE tenant_id = %(id)s"
    n = await plane.db.fetch_val(count, {"id": t["id"]})
    now = int(datetime.now(UTC).timestamp())
    point = {"time": now - now % 60, "cpu": 0.99, "mem": 1.0}
    await c.store("tenant", t["id"], "hour", [point])
    await c.store("tenant", t["id"], "hour", [point, {"time": now - 30}])  # the same, twice
    assert await plane.db.fetch_val(count, {"id": t["id"]}) in (n, n + 1)
    cpu = await plane.db.fetch_val(
        "SELECT cpu FROM tenant_usage WHERE tenant_id = %(id)s AND at = to_timestamp(%(t)s)",
        {"id": t["id"], "t": point["time"]},
    )
    assert cpu == 0.99
    # Points older than the archive keeps: a read of that archive trims them...
    old = now - ARCHIVES["hour"].span_s - 600
    await c.store("tenant", t["id"], "hour", [{"time": old, "cpu": 0.1}])
    assert (
        await plane.db.fetch_val(
            "SELECT count(*) FROM tenant_usage WHERE at = to_timestamp(%(t)s)", {"t": old}
        )
        == 0
    )
    # ...and the prune drops them for subjects no longer read (here, a month-old day point).
    await plane.db.execute(
        "INSERT INTO tenant_usage (tenant_id, timeframe, at, cpu) VALUES"
        " (%(id)s, 'day', now() - interval '3 days', 0.1),"
        " (%(id)s, 'month', now() - interval '30 days', 0.1)",
        {"id": t["id"]},
    )
    await c.prune()
    left = await plane.db.fetch_all(
        "SELECT timeframe FROM tenant_usage WHERE timeframe <> 'hour' AND tenant_id = %(id)s",
        {"id": t["id"]},
    )
    assert [r["timeframe"] for r in left] == ["month"]  # 30 days < the month's 35


async def test_a_failed_read_or_a_crash_costs_one_interval(plane: Plane) -> None:
    (t,) = await active_tenants(plane, "alpha")
    c, counting = collector(plane, interval=3600)
    plane.sim.sim.faults.update({"http_5xx_rate": 1.0})  # type: ignore[attr-defined]
    assert await c.collect_once() == 0
    plane.sim.sim.faults.update({"http_5xx_rate": 0.0})  # type: ignore[attr-defined]
    row = await plane.db.fetch_one(
        "SELECT * FROM usage_sources WHERE subject_id = %(id)s", {"id": t["id"]}
    )
    assert row is not None and row["hour_at"] is None  # claimed, not marked read
    assert await c.collect_once() == 0  # still this interval: no second call
    # A replica killed after its claim leaves the same: the next interval reads again, and
    # a fresh process (a new collector) needs nothing else.
    await plane.db.execute("UPDATE usage_sources SET claimed_at = now() - interval '2 hours'")
    restarted, _ = collector(plane, interval=3600)
    assert await restarted.collect_once() == 1 + 2
    assert (
        await plane.db.fetch_val(
            "SELECT count(*) FROM tenant_usage WHERE tenant_id = %(id)s", {"id": t["id"]}
        )
        > 0
    )
    assert counting.total() == 3  # the failed round's calls only


async def test_a_deleted_tenant_is_no_longer_read_and_its_bookkeeping_goes(plane: Plane) -> None:
    (t,) = await active_tenants(plane, "alpha")
    c, counting = collector(plane, interval=0.1)
    await c.collect_once()
    r = await plane.admin.delete(f"/api/v1/tenants/{t['id']}")
    assert r.status_code == 202
    await plane.worker.run_until_idle()
    await plane.db.execute("UPDATE usage_sources SET claimed_at = now() - interval '1 hour'")
    before = counting.calls[("container_rrddata", str(t["vmid"]))]
    await c.collect_once()
    assert counting.calls[("container_rrddata", str(t["vmid"]))] == before
    assert (await c.prune())["sources"] == 1


async def test_a_round_claims_batch_after_batch_until_nothing_is_due(
    plane: Plane, monkeypatch: pytest.MonkeyPatch
) -> None:
    from controlplane.usage import collector as module

    await active_tenants(plane, *(f"t{i}" for i in range(5)))
    monkeypatch.setattr(module, "CLAIM_LIMIT", 2)
    c, counting = collector(plane, interval=3600)
    assert await c.collect_once() == 5 + 2
    assert counting.total() == 7


async def test_a_later_read_stores_only_the_points_since_the_last(plane: Plane) -> None:
    (t,) = await active_tenants(plane, "alpha")
    c, _ = collector(plane, interval=0.1)
    await c.collect_once()
    # Mark every stored point; a point rewritten by the next hour read loses its mark.
    await plane.db.execute("UPDATE tenant_usage SET cpu = -1")
    await plane.db.execute(
        "UPDATE usage_sources SET claimed_at = now() - interval '1 hour',"
        " day_at = now(), week_at = now(), month_at = now()"
    )
    await c.collect_once()
    rows = await plane.db.fetch_all(
        "SELECT cpu FROM tenant_usage WHERE tenant_id = %(id)s AND timeframe = 'hour'",
        {"id": t["id"]},
    )
    rewritten = [r for r in rows if r["cpu"] != -1]
    assert len(rows) >= 60 and 1 <= len(rewritten) <= 6  # the overlap, not all 70
