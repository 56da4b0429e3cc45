"""The metrics of one app: its own `CollectorRegistry` and the functions that record into it.

Several apps live in one test process, so nothing here touches prometheus-client's global
default registry. Code that runs inside an app (the provisioner, the Proxmox client) finds
the app's `Metrics` in the shared extras and records through the module functions, which do
nothing when metrics are not installed (a bare worker process, a unit test):

    from controlplane import metrics
    metrics.observe_step(ctx.extras, "provisioning", "clone", 1.8, ok=True)
    metrics.observe_proxmox_call(ctx.extras, "pve1", "POST /nodes/{node}/lxc/{vmid}/clone", "ok")
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from controlplane.metrics.collectors import StateCollector

if TYPE_CHECKING:
    from controlplane.state import AppState

log = logging.getLogger(__name__)
EXTRAS_KEY = "metrics"

# Request latencies: a few milliseconds (reads) to tens of seconds (a slow Proxmox check).
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Provisioning steps: a config write takes milliseconds, a clone of a big disk minutes.
STEP_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
PROXMOX_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 35.0)
# Label values from the outside world are mapped onto these, so nobody can mint new series.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Metrics:
    """Every metric the control plane exports, on a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.state: AppState | None = None
        r = self.registry
        self.http_requests = Counter(
            "controlplane_http_requests",
            "HTTP requests answered, by route template (not raw path) and status",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_latency = Histogram(
            "controlplane_http_request_duration_seconds",
            "Time from the request's arrival to the end of its answer, by route template",
            ["method", "route"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self.step_duration = Histogram(
            "controlplane_provision_step_duration_seconds",
            "Provisioning steps (clone, configure, start ...) by operation and outcome",
            ["operation", "step", "outcome"],
            buckets=STEP_BUCKETS,
            registry=r,
        )
        self.step_failures = Counter(
            "controlplane_provision_step_failures",
            "Steps that raised, by operation, step and exception type (retried or not)",
            ["operation", "step", "error"],
            registry=r,
        )
        self.proxmox_calls = Counter(
            "controlplane_proxmox_calls",
            "Proxmox API calls by node, call (method and path template) and outcome",
            ["node", "call", "outcome"],
            registry=r,
        )
        self.proxmox_latency = Histogram(
            "controlplane_proxmox_call_duration_seconds",
            "Proxmox API call latency by node and call",
            ["node", "call"],
            buckets=PROXMOX_BUCKETS,
            registry=r,
        )
        self.lease_losses = Counter(
            "controlplane_worker_lease_losses",
            "Tenants this process stopped working on because another worker took the lease",
            registry=r,
        )
        # Tenants by status, the work queue and the audit queue, read at scrape time.
        self.collector = StateCollector(lambda: self.state)
        r.register(self.collector)

    # -- recording ------------------------------------------------------------------------

    def observe_http(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in HTTP_METHODS else "OTHER"
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_latency.labels(method, route).observe(seconds)

    def observe_step(
        self,
        operation: str,
        step: str,
        seconds: float | None,
        *,
        ok: bool,
        error: str | None = None,
    ) -> None:
        if seconds is not None:
            self.step_duration.labels(operation, step, "ok" if ok else "failed").observe(seconds)
        if not ok:
            self.step_failures.labels(operation, step, error or "Exception").inc()

    def observe_proxmox_call(
        self, node: str, call: str, outcome: str, seconds: float | None = None
    ) -> None:
        self.proxmox_calls.labels(node, call, outcome).inc()
        if seconds is not None:
            self.proxmox_latency.labels(node, call).observe(seconds)

    def observe_lease_lost(self, count: int = 1) -> None:
        self.lease_losses.inc(count)


def metrics_of(extras: Mapping[str, Any] | None) -> Metrics | None:
    """The app's metrics, from `AppState.extras` (or a StepContext's `extras`), if installed."""
    if not extras:
        return None
    found = extras.get(EXTRAS_KEY)
    return found if isinstance(found, Metrics) else None


def observe_step(
    extras: Mapping[str, Any] | None,
    operation: str,
    step: str,
    seconds: float | None,
    *,
    ok: bool,
    error: str | None = None,
) -> None:
    """One provisioning step ended: `operation` is the tenant status it worked on
    (provisioning, suspending, resuming, deleting), `error` the exception's type name."""
    m = metrics_of(extras)
    if m is not None:
        m.observe_step(operation, step, seconds, ok=ok, error=error)


def observe_proxmox_call(
    extras: Mapping[str, Any] | None,
    node: str,
    call: str,
    outcome: str,
    seconds: float | None = None,
) -> None:
    """One Proxmox API call ended. `call` is a template ("GET /nodes/{node}/lxc/{vmid}/config",
    see `proxmox_call`), `outcome` "ok" or `proxmox_outcome(exc)`."""
    m = metrics_of(extras)
    if m is not None:
        m.observe_proxmox_call(node, call, outcome, seconds)


def observe_lease_lost(extras: Mapping[str, Any] | None, count: int = 1) -> None:
    """A worker noticed that it no longer holds a tenant's lease."""
    m = metrics_of(extras)
    if m is not None:
        m.observe_lease_lost(count)


# -- label helpers for Proxmox calls -------------------------------------------------------

_AFTER = {"nodes": "{node}", "lxc": "{vmid}", "qemu": "{vmid}", "tasks": "{upid}"}


def proxmox_call(method: str, path: str) -> str:
    """`GET /nodes/pve1/lxc/10001/status/current` -> `GET /nodes/{node}/lxc/{vmid}/status/current`.

    Names and numbers become placeholders; what is left are the fixed words of the API.
    """
    parts = path.split("?", 1)[0].strip("/").split("/")
    out: list[str] = []
    previous = ""
    for part in parts:
        if previous in _AFTER:
            out.append(_AFTER[previous])
        elif part.isdigit() or part.startswith("UPID:"):
            out.append("{id}")
        else:
            out.append(part if re.fullmatch(r"[a-z][a-z0-9_-]{0,40}", part) else "{x}")
        previous = part
    return f"{method.upper()} /{'/'.join(out)}"


def proxmox_outcome(exc: BaseException | None) -> str:
    """The outcome label: "ok", or the error kind (ProxmoxNotFoundError -> "not_found")."""
    if exc is None:
        return "ok"
    for cls in type(exc).__mro__:
        name = cls.__name__
        if name.startswith("Proxmox") and name.endswith("Error") and name != "ProxmoxError":
            snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name[len("Proxmox") : -len("Error")])
            return snake.lower()
    return "proxmox_error" if type(exc).__name__ == "ProxmoxError" else "error"
