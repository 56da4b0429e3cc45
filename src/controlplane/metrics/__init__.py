"""Prometheus metrics: `GET /metrics`, per app, behind the admin or the metrics token.

    registry.py    Metrics (a CollectorRegistry of its own) and what records into it
    observers.py   StepTimer: the worker's observer, times steps and counts lease losses
    http.py        requests by route template and status, latency histograms
    collectors.py  tenants by status, work queue, expired leases, audit queue (scrape time)
    routes.py      the /metrics endpoint, and `install_metrics`

Nothing is patched: the composition root (`runtime.bootstrap`) builds one `Metrics` per
process and hands it to what it observes, the Proxmox client registry (each client reports
its calls) and the worker (through a `StepTimer`). The HTTP counts come from
`web.middleware.EdgeMiddleware`, the outermost layer, so every answer is counted.
"""

from __future__ import annotations

from controlplane.metrics.observers import StepTimer
from controlplane.metrics.registry import Metrics, proxmox_call, proxmox_outcome

__all__ = ["Metrics", "StepTimer", "proxmox_call", "proxmox_outcome"]
