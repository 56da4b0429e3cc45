"""Factories for the workers: their own connection pool, the worker, its step context."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from controlplane.config import Settings
from controlplane.crypto import Sealer
from controlplane.db import Database
from controlplane.nodes.registry import ProxmoxRegistry
from controlplane.provisioner.addresses import AddressPolicy
from controlplane.provisioner.context import RouteHook, StepContext
from controlplane.provisioner.observer import NoObserver, WorkerObserver
from controlplane.provisioner.worker import Worker


def runs_workers(settings: Settings, *, serve_api: bool) -> bool:
    """A worker process always does; an API process unless RUN_WORKERS=false."""
    return not serve_api or settings.run_workers


@asynccontextmanager
async def worker_database(settings: Settings, db: Database) -> AsyncIterator[Database]:
    """The workers' pool of their own: a burst of API requests must not starve them of
    connections (nor they the API). Queued clones each hold one while they wait."""
    own = await Database.connect(
        settings.database_url or db.url,
        min_size=1,
        max_size=2 * settings.worker_concurrency + 4,
        timeout=settings.db_pool_timeout_s,
    )
    try:
        yield own
    finally:
        await own.close()


def worker(
    settings: Settings,
    db: Database,
    registry: ProxmoxRegistry,
    sealer: Sealer,
    *,
    route_hook: RouteHook | None,
    observer: WorkerObserver | None = None,
) -> Worker:
    """The worker (not started yet). The route hook is given here, so it exists before the
    first tenant reaches its route step."""
    ctx = StepContext(
        db=db,
        registry=registry,
        sealer=sealer,
        owner=Worker.make_owner(),
        route_hook=route_hook,
        observer=observer or NoObserver(),
        addresses=AddressPolicy.from_settings(settings),
        move_health_wait_s=settings.move_health_wait_s,
    )
    return Worker(
        ctx, concurrency=settings.worker_concurrency, lease_seconds=settings.worker_lease_seconds
    )
