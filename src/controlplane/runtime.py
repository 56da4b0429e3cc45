"""Start and stop everything one process runs, in order, for `serve`, `worker` and tests.

The API and the standalone worker build their resources here, so both wire the same
database pool, sealer, audit writer and background services.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from controlplane.audit.writer import AuditLog
from controlplane.config import Settings
from controlplane.crypto import Sealer
from controlplane.db import Database
from controlplane.db.embedded import embedded_url
from controlplane.db.migrate import migrate
from controlplane.state import AppState

log = logging.getLogger(__name__)

Stopper = Callable[[], Awaitable[None]]
STOP_TIMEOUT = 20.0  # seconds a service may take to stop (workers use 10 s of grace)


def resolve_database_url(settings: Settings, override: str | None = None) -> str:
    if override:
        return override
    if settings.database_url:
        return settings.database_url
    log.info(
        "no DATABASE_URL: starting embedded PostgreSQL", extra={"pgdata": settings.embedded_pg_dir}
    )
    return embedded_url(settings.embedded_pg_dir)


class Runtime:
    def __init__(self, settings: Settings, *, database_url: str | None = None) -> None:
        self.settings = settings
        self._database_url = database_url
        self._stoppers: list[Stopper] = []
        self.state: AppState | None = None  # type: ignore[assignment]

    async def start(self, *, serve_api: bool) -> AppState:
        settings = self.settings
        settings.require_secrets()
        url = resolve_database_url(settings, self._database_url)
        applied = await migrate(url)
        if applied:
            log.info("migrations applied", extra={"applied": applied})
        db = await Database.connect(
            url,
            min_size=settings.db_pool_min,
            max_size=settings.db_pool_max,
            timeout=settings.db_pool_timeout_s,
        )
        self._stoppers.append(db.close)
        audit = AuditLog(db)
        audit.start()
        self._stoppers.append(audit.stop)
        self.state = AppState(
            settings=settings,
            db=db,
            sealer=Sealer.from_key(settings.encryption_key_bytes),
            audit=audit,
        )
        for hook in start_hooks():
            stopper = await hook(self.state, serve_api)
            if stopper is not None:
                self._stoppers.append(stopper)
        return self.state

    async def stop(self) -> None:
        while self._stoppers:
            stopper = self._stoppers.pop()
            try:
                # Each service gets a bounded time to stop, so shutdown always ends.
                async with asyncio.timeout(STOP_TIMEOUT):
                    await stopper()
            except TimeoutError:
                log.error("a service did not stop in time", extra={"stopper": repr(stopper)})
            except Exception:
                log.exception("error while stopping")


StartHook = Callable[[AppState, bool], Awaitable[Stopper | None]]


def start_hooks() -> list[StartHook]:
    """Background services, in start order; each returns how to stop it (or None).

    A hook gets the shared state and whether this process serves the API; it decides itself
    whether its integration is configured. Imported here, not at module level, so that
    importing the runtime stays cheap and free of side effects.
    """
    from controlplane.billing.sweep import start_hook as start_billing
    from controlplane.caddy.sync import start_hook as start_caddy
    from controlplane.nodes.hooks import start_proxmox
    from controlplane.provisioner.hooks import start_workers
    from controlplane.wireguard.sync import start_hook as start_wireguard

    # Caddy before the workers: they look up `extras["route_hook"]`.
    hooks: list[StartHook] = [
        start_proxmox,
        start_caddy,
        start_wireguard,
        start_billing,
        start_workers,
    ]
    return hooks


async def run_worker_process(settings: Settings) -> None:
    """`controlplane worker`: the background services without the API, until SIGTERM/SIGINT."""
    import asyncio
    import signal

    runtime = Runtime(settings)
    await runtime.start(serve_api=False)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker running", extra={"concurrency": settings.worker_concurrency})
    try:
        await stop.wait()
    finally:
        log.info("worker stopping")
        await runtime.stop()
