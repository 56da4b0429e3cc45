"""/metrics: who may read it, and that every family exists and moves with real traffic."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from controlplane.audit.writer import AuditEntry, AuditLog
from controlplane.config import Settings
from controlplane.db.gateway import count_queries
from controlplane.metrics import proxmox_call, proxmox_outcome
from controlplane.proxmox import ProxmoxLockedError, ProxmoxTaskTimeoutError
from tests.auth.conftest import bearer, login, register, user_settings
from tests.conftest import ADMIN_TOKEN, SimHandle

METRICS_TOKEN = "metrics-" + "Kp4w9" * 5
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def settings(database_url: str) -> Settings:
    return user_settings(database_url, metrics_token=METRICS_TOKEN)


async def scrape(client: httpx.AsyncClient, token: str = METRICS_TOKEN) -> Samples:
    r = await client.get("/metrics", headers=bearer(token))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    out: Samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def series(samples: Samples, name: str) -> list[dict[str, str]]:
    return [dict(labels) for (n, labels) in samples if n == name]


async def test_only_the_admin_or_metrics_token_reads_metrics(
    client: httpx.AsyncClient, app: Any
) -> None:
    assert (await client.get("/metrics")).status_code == 401
    r = await client.get("/metrics", headers=bearer("not-a-token-at-all-0123"))
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    await register(client, "ada@example.com")
    user = (await login(client, "ada@example.com"))["access_token"]
    r = await client.get("/metrics", headers=bearer(user))
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    for token in (ADMIN_TOKEN, METRICS_TOKEN):
        r = await client.get("/metrics", headers=bearer(token))
        assert r.status_code == 200 and "controlplane_http_requests_total" in r.text
        assert r.headers["cache-control"] == "no-store"
    # The metrics token is only for metrics.
    assert (await client.get("/api/v1/nodes", headers=bearer(METRICS_TOKEN))).status_code == 401
    r = await client.get(
        "/metrics",
        headers={**bearer(METRICS_TOKEN), "Accept": "application/openmetrics-text"},
    )
    assert r.headers["content-type"].startswith("application/openmetrics-text")
    assert r.text.rstrip().endswith("# EOF")


async def test_http_requests_by_route_template_not_raw_path(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    ids = [uuid.uuid4() for _ in range(5)]
    for node_id in ids:
        assert (await admin.get(f"/api/v1/nodes/{node_id}")).status_code == 404
    assert (await admin.get("/api/v1/nodes")).status_code == 200
    for i in range(20):  # a scanner: twenty different unknown paths
        await client.get(f"/wp-admin/{i}/{uuid.uuid4()}.php")
    await client.request("BREW", "/api/v1/nodes")  # a made-up method
    await client.get("/static/docs-init.js")
    big = b"x" * (2 * 1024 * 1024)
    r = await admin.post("/api/v1/projects", content=big)
    assert r.status_code == 413
    got = await scrape(client)
    total = "controlplane_http_requests_total"
    assert value(got, total, method="GET", route="/api/v1/nodes/{node_id}", status="404") == 5
    assert value(got, total, method="GET", route="/api/v1/nodes", status="200") == 1
    assert value(got, total, method="GET", route="unmatched", status="404") == 20
    assert value(got, total, method="OTHER", route="/api/v1/nodes", status="405") == 1
    assert value(got, total, method="GET", route="/static/{path}", status="200") == 1
    assert value(got, total, method="POST", route="/api/v1/projects", status="413") == 1
    routes = {s["route"] for s in series(got, total)}
    assert not any(str(i) in r for r in routes for i in ids), routes
    assert not any("wp-admin" in r for r in routes)
    count = "controlplane_http_request_duration_seconds_count"
    assert value(got, count, method="GET", route="/api/v1/nodes/{node_id}") == 5
    # Dashboard routes keep their /admin prefix.
    await client.get("/admin/tenants")
    again = await scrape(client)
    assert value(again, total, method="GET", route="/admin/tenants", status="401") == 1
    assert value(again, total, method="GET", route="/metrics", status="200") == 1


async def test_tenants_by_status_and_the_work_queue_in_one_query(
    client: httpx.AsyncClient, app: Any
) -> None:
    db = app.state.cp.db
    before = await scrape(client)
    assert value(before, "controlplane_metrics_db_up") == 1
    for status in ("provisioning", "active", "error", "deleted"):
        assert ("controlplane_tenants", frozenset({("status", status)})) in before
        assert value(before, "controlplane_tenants", status=status) == 0
    rows = [
        ("provisioning", None, 0),  # waits for a worker
        ("provisioning", "w1", -5),  # its worker's lease ran out: waits too, and is expired
        ("deleting", "w2", 30),  # leased and alive
        ("active", None, 0),
        ("active", None, 0),
        ("suspended", None, 0),
    ]
    for i, (status, owner, lease) in enumerate(rows):
        await db.execute(
            "INSERT INTO tenants (id, name, subdomain, ram_mb, cores, status, lease_owner,"
            " lease_expires_at) VALUES (%(id)s, %(n)s, %(n)s, 512, 1, %(s)s, %(o)s,"
            " CASE WHEN %(o)s::text IS NULL THEN NULL"
            " ELSE now() + make_interval(secs => %(l)s) END)",
            {"id": uuid.uuid4(), "n": f"t{i}", "s": status, "o": owner, "l": lease},
        )
    await db.execute(  # and one backing off before a retry
        "INSERT INTO tenants (id, name, subdomain, ram_mb, cores, status, next_attempt_at)"
        " VALUES (%(id)s, 'r', 'r', 512, 1, 'resuming', now() + interval '1 hour')",
        {"id": uuid.uuid4()},
    )
    with count_queries() as queries:  # the scrape's own, not a background poller's
        got = await scrape(client)
    assert queries.count == 1  # one GROUP BY, whatever the number of tenants
    assert value(got, "controlplane_tenants", status="provisioning") == 2
    assert value(got, "controlplane_tenants", status="active") == 2
    assert value(got, "controlplane_tenants", status="suspended") == 1
    assert value(got, "controlplane_tenants", status="deleting") == 1
    assert value(got, "controlplane_tenants", status="error") == 0
    assert value(got, "controlplane_worker_queue_depth") == 2
    assert value(got, "controlplane_worker_backing_off") == 1
    assert value(got, "controlplane_worker_leases_expired") == 1
    await db.execute("UPDATE tenants SET status = 'active', lease_owner = NULL")
    moved = await scrape(client)
    assert value(moved, "controlplane_tenants", status="active") == 7
    assert value(moved, "controlplane_worker_queue_depth") == 0
    assert value(moved, "controlplane_worker_leases_expired") == 0


async def test_audit_queue_depth_and_drops(database_url: str) -> None:
    from controlplane.app import create_app
    from controlplane.db import Database

    # A writer that is not running and holds two entries: the third and fourth are dropped.
    db = await Database.connect(database_url, min_size=1, max_size=1)
    stalled = AuditLog(db, max_queue=2)
    application = create_app(
        user_settings(database_url, metrics_token=METRICS_TOKEN), overrides={"audit": stalled}
    )
    try:
        async with application.router.lifespan_context(application):
            assert application.state.cp.audit is stalled
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                got = await scrape(client)
                assert value(got, "controlplane_audit_dropped_total") == 0
                assert ("controlplane_audit_queue_depth", frozenset()) in got
                for i in range(4):
                    stalled.record(AuditEntry(actor="test", action=f"a{i}", target_type="t"))
                got = await scrape(client)
    finally:
        await db.close()
    assert value(got, "controlplane_audit_queue_depth") == 2
    assert value(got, "controlplane_audit_dropped_total") == 2


async def test_a_broken_database_does_not_break_the_scrape(
    client: httpx.AsyncClient, app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = app.state.cp.db

    async def down(*_a: Any, **_k: Any) -> Any:
        raise ConnectionError("database is gone")

    monkeypatch.setattr(db, "fetch_all", down)
    got = await scrape(client)
    assert value(got, "controlplane_metrics_db_up") == 0
    assert series(got, "controlplane_tenants") == []
    assert ("controlplane_audit_queue_depth", frozenset()) in got


async def test_each_app_counts_on_its_own(
    client: httpx.AsyncClient, database_url: str, pg_admin_url: str
) -> None:
    from controlplane.app import create_app
    from tests.conftest import create_database, drop_database, make_settings

    await client.get("/healthz")
    other_url = create_database(pg_admin_url)
    try:
        other = create_app(make_settings(other_url))
        async with other.router.lifespan_context(other):
            transport = httpx.ASGITransport(app=other)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c2:
                got = await scrape(c2, ADMIN_TOKEN)
        assert value(got, "controlplane_http_requests_total", method="GET", route="/healthz",
                     status="200") == 0  # fmt: skip
    finally:
        drop_database(pg_admin_url, other_url)
    mine = await scrape(client)
    assert value(mine, "controlplane_http_requests_total", method="GET", route="/healthz",
                 status="200") == 1  # fmt: skip


def test_proxmox_label_helpers() -> None:
    upid = "UPID:pve1:00001234:0000ABCD:65000000:vzclone:9000:root@pam!cp:"
    assert proxmox_call("get", "/nodes/pve1/lxc/10001/status/current") == (
        "GET /nodes/{node}/lxc/{vmid}/status/current"
    )
    assert proxmox_call("GET", f"/nodes/pve-2/tasks/{upid}/status") == (
        "GET /nodes/{node}/tasks/{upid}/status"
    )
    assert proxmox_call("GET", "/cluster/resources?type=vm") == "GET /cluster/resources"
    assert proxmox_call("POST", "/nodes/x/lxc/9000/clone") == "POST /nodes/{node}/lxc/{vmid}/clone"
    assert proxmox_outcome(None) == "ok"
    assert proxmox_outcome(ProxmoxLockedError("CT is locked (disk)", status=500)) == "locked"
    timeout = ProxmoxTaskTimeoutError("slow", upid=upid, exitstatus=None)
    assert proxmox_outcome(timeout) == "task_timeout"
    assert proxmox_outcome(RuntimeError("x")) == "error"


# -- the provisioner, end to end against the simulator --------------------------------------


@pytest.fixture
async def live(
    database_url: str, pve_sim: SimHandle
) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """An app whose own workers run, with a registered node and a default project."""
    from controlplane.app import create_app

    settings = user_settings(
        database_url,
        metrics_token=METRICS_TOKEN,
        run_workers=True,
        worker_lease_seconds=5.0,
        node_poll_seconds=0.5,
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", headers=bearer(ADMIN_TOKEN)
        ) as http:
            r = await http.post("/api/v1/nodes", json=pve_sim.node_body("pve1"))
            assert r.status_code == 201, r.text
            body = {"name": "Web", "slug": "web", "template_vmid": 9000, "ram_mb": 512}
            r = await http.post("/api/v1/projects", json={**body, "is_default": True})
            assert r.status_code == 201, r.text
            yield application, http


async def _until(http: httpx.AsyncClient, tenant_id: str, status: str) -> dict[str, Any]:
    for _ in range(400):
        tenant = (await http.get(f"/api/v1/tenants/{tenant_id}")).json()
        if tenant["status"] == status:
            return tenant
        await asyncio.sleep(0.025)
    raise AssertionError(f"tenant never became {status}: {tenant}")


async def test_steps_and_proxmox_calls_are_recorded(
    live: tuple[Any, httpx.AsyncClient], pve_sim: SimHandle
) -> None:
    app, http = live
    assert app.state.cp.metrics is app.state.metrics
    r = await http.post("/api/v1/tenants", json={"subdomain": "acme"})
    assert r.status_code == 202, r.text
    tenant = await _until(http, r.json()["id"], "active")
    got = await scrape(http)
    count = "controlplane_provision_step_duration_seconds_count"
    for step in ("clone", "configure", "start", "address", "bootstrap", "route"):
        assert value(got, count, operation="provisioning", step=step, outcome="ok") == 1, step
    total = "controlplane_provision_step_duration_seconds_sum"
    assert value(got, total, operation="provisioning", step="clone", outcome="ok") > 0
    calls = "controlplane_proxmox_calls_total"
    clone = "POST /nodes/{node}/lxc/{vmid}/clone"
    assert value(got, calls, node="pve1", call=clone, outcome="ok") == 1
    polls = "GET /nodes/{node}/tasks/{upid}/status"
    assert value(got, calls, node="pve1", call=polls, outcome="ok") >= 2  # clone + start
    assert value(got, "controlplane_proxmox_call_duration_seconds_count", node="pve1",
                 call=clone) == 1  # fmt: skip
    assert ("controlplane_worker_in_flight", frozenset()) in got
    assert value(got, "controlplane_worker_concurrency") == 10

    # A suspend whose stop task fails: the step fails, the failure is counted by type.
    pve_sim.sim.faults.update({"task_failure_rate": 1.0})  # type: ignore[attr-defined]
    r = await http.post(f"/api/v1/tenants/{tenant['id']}/suspend")
    assert r.status_code == 202, r.text
    for _ in range(400):
        got = await scrape(http)
        failures = [
            s for s in series(got, "controlplane_provision_step_failures_total")
            if s["operation"] == "suspending"
        ]  # fmt: skip
        if failures:
            break
        await asyncio.sleep(0.025)
    assert failures == [{"operation": "suspending", "step": "stop", "error": "ProxmoxTaskError"}]
    assert value(got, count, operation="suspending", step="stop", outcome="failed") >= 1
    stop = "POST /nodes/{node}/lxc/{vmid}/status/stop"
    assert value(got, calls, node="pve1", call=stop, outcome="ok") >= 1
    # Calls that Proxmox refuses are counted by kind.
    missing = "GET /nodes/{node}/lxc/{vmid}/config"
    before = value(got, calls, node="pve1", call=missing, outcome="not_found")
    r = await http.delete(f"/api/v1/orphans/{tenant['node_id']}/99999")
    assert r.status_code == 404, r.text
    got = await scrape(http)
    assert value(got, calls, node="pve1", call=missing, outcome="not_found") == before + 1
