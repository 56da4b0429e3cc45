"""Step metrics: the worker's observer (`provisioner.observer.WorkerObserver`).

The worker reports each step as it records it, and the end of each operation; this turns
those reports into the step histogram, the step failures by exception type and the lease
losses. One `StepTimer` per worker: it keeps the step each tenant is in and when it began.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from controlplane.metrics.registry import Metrics


class StepTimer:
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        # tenant id -> (operation, step, started)
        self._open: dict[uuid.UUID, tuple[str, str, float]] = {}

    def _close(self, tenant_id: uuid.UUID, *, ok: bool, error: str | None = None) -> None:
        opened = self._open.pop(tenant_id, None)
        if opened is not None:
            operation, step, started = opened
            self._metrics.observe_step(
                operation, step, time.monotonic() - started, ok=ok, error=error
            )

    def step_done(self, tenant_id: uuid.UUID) -> None:
        self._close(tenant_id, ok=True)

    def step_started(self, tenant: dict[str, Any], step: str, started: float) -> None:
        self._open[tenant["id"]] = (str(tenant.get("status")), step, started)

    def step_failed(self, tenant: dict[str, Any], exc: Exception) -> None:
        error = type(exc).__name__
        if tenant["id"] in self._open:
            self._close(tenant["id"], ok=False, error=error)
        else:  # failed before its first step (the node vanished ...)
            self._metrics.observe_step(
                str(tenant.get("status")),
                tenant.get("step") or "unknown",
                None,
                ok=False,
                error=error,
            )

    def abandoned(self, tenant_id: uuid.UUID, *, lease_lost: bool) -> None:
        self._open.pop(tenant_id, None)
        if lease_lost:
            self._metrics.observe_lease_lost()
