"""Gauges read at scrape time: tenants by status, the work queue, the audit queue.

The /metrics handler calls `refresh` before it renders: the database part is one GROUP BY
over tenants (`queries.sql`); the in-process parts (audit queue, worker slots) are read from
the services it is given.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from controlplane.audit.writer import AuditLog
from controlplane.db import Database, load_queries
from controlplane.provisioner.worker import Worker

log = logging.getLogger(__name__)
_Q = load_queries("controlplane.metrics")

# Every status gets a sample, zeros included, so a dashboard never shows a gap for "none".
TENANT_STATUSES = (
    "provisioning",
    "active",
    "suspending",
    "suspended",
    "resuming",
    "error",
    "deleting",
    "deleted",
)
DB_TIMEOUT = 2.0


class StateCollector(Collector):
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] | None = None
        self._audit: AuditLog | None = None
        self._worker: Worker | None = None

    async def refresh(self, db: Database, audit: AuditLog, worker: Worker | None) -> None:
        """Read the tenant counts; on failure the scrape goes on without them (db_up 0)."""
        self._audit, self._worker = audit, worker
        try:
            self.rows = await asyncio.wait_for(db.fetch_all(_Q["tenant_counts"]), DB_TIMEOUT)
        except Exception as exc:
            log.warning("metrics: tenant counts unavailable", extra={"error": str(exc)})
            self.rows = None

    def describe(self) -> list[Any]:
        return []  # families depend on what is wired; nothing to check at registration

    def collect(self) -> Iterator[Any]:
        rows = self.rows
        up = GaugeMetricFamily(
            "controlplane_metrics_db_up",
            "1 when this scrape could read the tenant counts from PostgreSQL",
        )
        up.add_metric([], 0 if rows is None else 1)
        yield up
        if rows is not None:
            by_status = {str(r["status"]): r for r in rows}
            tenants = GaugeMetricFamily(
                "controlplane_tenants",
                "Tenants by status (deleted ones included)",
                labels=["status"],
            )
            for status in (*TENANT_STATUSES, *sorted(set(by_status) - set(TENANT_STATUSES))):
                row = by_status.get(status)
                tenants.add_metric([status], row["tenants"] if row else 0)
            yield tenants
            yield _gauge(
                "controlplane_worker_queue_depth",
                "Tenants waiting for a worker now (need work, due, not leased)",
                sum(r["waiting"] for r in rows),
            )
            yield _gauge(
                "controlplane_worker_backing_off",
                "Tenants that need work but wait for their retry time",
                sum(r["backing_off"] for r in rows),
            )
            yield _gauge(
                "controlplane_worker_leases_expired",
                "Tenants still held by a lease that ran out (a dead or stuck worker)",
                sum(r["lease_expired"] for r in rows),
            )
        audit = self._audit
        if audit is None:
            return
        yield _gauge(
            "controlplane_audit_queue_depth",
            "Audit entries waiting to be written",
            audit.depth,
        )
        dropped = CounterMetricFamily(
            "controlplane_audit_dropped",
            "Audit entries dropped because the queue was full",
        )
        dropped.add_metric([], audit.dropped)
        yield dropped
        worker = self._worker
        if worker is not None:
            yield _gauge(
                "controlplane_worker_in_flight",
                "Tenants this process is working on now",
                worker.in_flight,
            )
            yield _gauge(
                "controlplane_worker_concurrency",
                "Tenants this process works on at most at once",
                worker.concurrency,
            )


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation)
    family.add_metric([], value)
    return family
