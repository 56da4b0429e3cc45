"""Start-up wiring for the workers and the tenant status poller."""

from __future__ import annotations

from controlplane.db import Database
from controlplane.provisioner.addresses import AddressPolicy
from controlplane.provisioner.context import StepContext
from controlplane.provisioner.status import start_status_poller
from controlplane.provisioner.worker import Worker
from controlplane.runtime import Stopper
from controlplane.state import AppState


async def start_workers(state: AppState, serve_api: bool) -> Stopper | None:
    if serve_api and not state.settings.run_workers:
        return None
    # The workers get a pool of their own: a burst of API requests must not starve them
    # of connections (nor they the API). Queued clones each hold one while they wait.
    concurrency = state.settings.worker_concurrency
    db = await Database.connect(
        state.settings.database_url or state.db.pool.conninfo,
        min_size=1,
        max_size=2 * concurrency + 4,
        timeout=state.settings.db_pool_timeout_s,
    )
    ctx = StepContext(
        db=db,
        registry=state.extras["proxmox_registry"],
        sealer=state.sealer,
        owner=Worker.make_owner(),
        extras=state.extras,
        addresses=AddressPolicy.from_settings(state.settings),
    )
    worker = Worker(
        ctx,
        concurrency=concurrency,
        lease_seconds=state.settings.worker_lease_seconds,
    )
    worker.start()
    state.extras["worker"] = worker
    stop_status = await start_status_poller(ctx, state.settings.tenant_poll_seconds)

    async def stop() -> None:
        await stop_status()
        await worker.stop(grace=10.0)
        await db.close()

    return stop
