"""The metrics of one process: its own `CollectorRegistry` and the methods that record into it.

Several apps live in one test process, so nothing here touches prometheus-client's global
default registry. The composition root hands the process's `Metrics` to what it observes:
the Proxmox client registry calls `proxmox_call_ended` after every API call, the worker
tells a `StepTimer` (observers.py) about its steps, and the HTTP middleware records requests.
"""

from __future__ import annotations

import logging
import re

from prometheus_client import CollectorRegistry, Counter, Histogram

from controlplane.metrics.collectors import StateCollector

log = logging.getLogger(__name__)

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
        self.collector = StateCollector()
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

    def proxmox_call_ended(
        self, node: str, method: str, path: str, error: BaseException | None, seconds: float
    ) -> None:
        """One Proxmox API call ended (the registry's `NodeCallObserver`)."""
        self.observe_proxmox_call(node, proxmox_call(method, path), proxmox_outcome(error), seconds)

    def observe_lease_lost(self, count: int = 1) -> None:
        self.lease_losses.inc(count)


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
