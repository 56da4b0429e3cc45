"""Prometheus metrics: `GET /metrics`, per app, behind the admin or the metrics token.

    registry.py    Metrics (a CollectorRegistry of its own) and the observe_* functions
    http.py        requests by route template and status, latency histograms
    collectors.py  tenants by status, work queue, expired leases, audit queue (scrape time)
    instrument.py  steps and Proxmox calls, recorded by wrapping the live worker/registry
    routes.py      the /metrics endpoint

`install_metrics(app)` is the whole wiring: the composition root calls it last, so its
middleware is the outermost and counts every answer. After the app's start-up it binds to
the app state: `extras["metrics"]` for code that records directly, and the wrappers on the
worker and the Proxmox registry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from controlplane.metrics.http import HttpMetricsMiddleware
from controlplane.metrics.instrument import instrument_registry, instrument_worker
from controlplane.metrics.registry import (
    EXTRAS_KEY,
    Metrics,
    metrics_of,
    observe_lease_lost,
    observe_proxmox_call,
    observe_step,
    proxmox_call,
    proxmox_outcome,
)
from controlplane.state import AppState

__all__ = [
    "Metrics",
    "bind",
    "install_metrics",
    "instrument_worker",
    "metrics_of",
    "observe_lease_lost",
    "observe_proxmox_call",
    "observe_step",
    "proxmox_call",
    "proxmox_outcome",
]


def bind(metrics: Metrics, state: AppState) -> None:
    """Attach the metrics to a started app state (idempotent)."""
    metrics.state = state
    state.extras[EXTRAS_KEY] = metrics
    registry = state.extras.get("proxmox_registry")
    if registry is not None:
        instrument_registry(metrics, registry)
    worker = state.extras.get("worker")
    if worker is not None:
        instrument_worker(metrics, worker)


def install_metrics(app: FastAPI) -> Metrics:
    """Add /metrics and the HTTP middleware (outermost: call this after the others)."""
    from controlplane.metrics.routes import router

    metrics = Metrics()
    app.state.metrics = metrics
    app.include_router(router)
    app.add_middleware(HttpMetricsMiddleware, metrics=metrics)
    started = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        async with started(application) as maybe_state:
            bind(metrics, application.state.cp)
            yield maybe_state

    app.router.lifespan_context = lifespan
    return metrics
