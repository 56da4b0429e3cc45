"""What the worker tells an observer (metrics) about the steps it runs.

A step starts when the worker records it (`StepContext.set_step`) and ends when the next
one starts, when the operation ends, or when the step fails. The worker calls these in that
order for each tenant; an observer must not raise and must not block.
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol


class WorkerObserver(Protocol):
    def step_done(self, tenant_id: uuid.UUID) -> None:
        """The tenant's current step got this far: it is done (a new one starts, or the
        operation ended)."""

    def step_started(self, tenant: dict[str, Any], step: str, started: float) -> None:
        """`step` was recorded on the tenant's row; it began at `started` (monotonic)."""

    def step_failed(self, tenant: dict[str, Any], exc: Exception) -> None:
        """The tenant's current step (or, before any step, the operation) raised `exc`."""

    def abandoned(self, tenant_id: uuid.UUID, *, lease_lost: bool) -> None:
        """Work on the tenant was cancelled: on shutdown, or because the lease was lost."""


class NoObserver:
    """The observer of a worker nobody watches."""

    def step_done(self, tenant_id: uuid.UUID) -> None:
        pass

    def step_started(self, tenant: dict[str, Any], step: str, started: float) -> None:
        pass

    def step_failed(self, tenant: dict[str, Any], exc: Exception) -> None:
        pass

    def abandoned(self, tenant_id: uuid.UUID, *, lease_lost: bool) -> None:
        pass
