"""The composition root: `bootstrap` builds every service one process runs, in order.

`serve` (the app's lifespan), `controlplane worker`, the demo and the tests all enter it:

    async with bootstrap(settings, serve_api=True) as services:
        ...  # services.db, services.proxmox, services.worker ...

Each service is entered on one `AsyncExitStack` in the order its dependencies require and
closed in reverse, each with at most `STOP_TIMEOUT` seconds, so shutdown always ends. An
integration's factory returns `None` when it is not configured. `overrides` replaces a
service by name (tests: a fake verifier, a stalled audit log); the root neither starts nor
stops what it is given.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import fields
from typing import Any, TypedDict, TypeVar

from controlplane.audit.writer import AuditLog
from controlplane.auth.passwords import Hasher
from controlplane.billing.stripe_api import StripeGateway
from controlplane.billing.sweep import billing_sweeper, stripe_gateway
from controlplane.caddy.routes import CaddyRoutes
from controlplane.caddy.sync import RouteReconciler, caddy_routes, route_reconciler
from controlplane.capacity.sampler import capacity_sampler
from controlplane.config import Settings
from controlplane.crypto import Sealer
from controlplane.db import Database
from controlplane.db.embedded import embedded_url
from controlplane.db.migrate import migrate
from controlplane.events.hub import EventHub, event_pruner
from controlplane.mail.sender import MailSender
from controlplane.metrics import Metrics, StepTimer
from controlplane.nodes.hooks import node_poller, proxmox_registry
from controlplane.nodes.registry import ProxmoxRegistry
from controlplane.nodes.service import NodeVerifier
from controlplane.nodes.verifier import verify_node
from controlplane.operations.drains import DrainRunner
from controlplane.operations.remediation import AutoRepair
from controlplane.operations.scheduler import BackupScheduler
from controlplane.operations.worker import OperationWorker
from controlplane.provisioner import hooks as workers
from controlplane.provisioner.status import start_status_poller
from controlplane.provisioner.worker import Worker
from controlplane.sshexec.pool import SshPool
from controlplane.sso.keys import SigningKeys
from controlplane.state import Services
from controlplane.usage.collector import usage_collector
from controlplane.warmpool.refiller import Refiller
from controlplane.webhooks.sender import WebhookSender
from controlplane.wireguard.sync import PeerSyncer, peer_syncer

log = logging.getLogger(__name__)

STOP_TIMEOUT = 20.0  # seconds a service may take to stop (workers use 10 s of grace)
WORKER_GRACE = 10.0
T = TypeVar("T")


class Overrides(TypedDict, total=False):
    """Services to use as given instead of building them (the caller owns their lifetime)."""

    db: Database
    sealer: Sealer
    audit: AuditLog
    metrics: Metrics
    password_hasher: Hasher
    signing_keys: SigningKeys
    proxmox: ProxmoxRegistry
    node_verifier: NodeVerifier
    route_hook: CaddyRoutes | None
    caddy_reconciler: RouteReconciler | None
    wireguard_sync: PeerSyncer | None
    stripe_gateway: StripeGateway | None
    worker: Worker | None
    ssh: SshPool | None
    operations: OperationWorker | None
    webhook_sender: WebhookSender | None


def resolve_database_url(settings: Settings, override: str | None = None) -> str:
    if override:
        return override
    if settings.database_url:
        return settings.database_url
    log.info(
        "no DATABASE_URL: starting embedded PostgreSQL", extra={"pgdata": settings.embedded_pg_dir}
    )
    return embedded_url(settings.embedded_pg_dir)


def _task_sites() -> list[str]:
    """Where each other task of the loop is waiting: what an operator needs to see a stuck stop."""
    sites = []
    for task in asyncio.all_tasks():
        if task is asyncio.current_task() or task.done():
            continue
        frames = task.get_stack(limit=1)
        where = f"{frames[0].f_code.co_filename}:{frames[0].f_lineno}" if frames else "?"
        sites.append(f"{task.get_name()} at {where}")
    return sorted(sites)


def _bounded(name: str, stop: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        try:
            # Each service gets a bounded time to stop, so shutdown always ends.
            async with asyncio.timeout(STOP_TIMEOUT):
                await stop()
        except TimeoutError:
            log.error(
                "a service did not stop in time",
                extra={"service": name, "waiting_tasks": _task_sites()},
            )
        except Exception:
            log.exception("error while stopping", extra={"service": name})

    return run


class _Root:
    """The exit stack plus the overrides, with one way to enter each kind of service."""

    def __init__(self, stack: AsyncExitStack, overrides: Overrides) -> None:
        self._stack = stack
        self._overrides: dict[str, Any] = dict(overrides)
        unknown = set(self._overrides) - {f.name for f in fields(Services)}
        if unknown:
            raise TypeError(f"unknown services in overrides: {sorted(unknown)}")

    def given(self, name: str) -> bool:
        return name in self._overrides

    def override(self, name: str) -> Any:
        return self._overrides[name]

    def on_stop(self, name: str, stop: Callable[[], Awaitable[object]]) -> None:
        self._stack.push_async_callback(_bounded(name, stop))

    async def enter(self, name: str, cm: AbstractAsyncContextManager[T]) -> T:
        """Enter `cm` now; leave it, in its turn, within the bound."""
        value = await cm.__aenter__()
        self.on_stop(name, lambda: cm.__aexit__(None, None, None))
        return value


@asynccontextmanager
async def bootstrap(
    settings: Settings,
    *,
    serve_api: bool,
    overrides: Overrides | None = None,
    database_url: str | None = None,
) -> AsyncIterator[Services]:
    """Build and start this process's services; stop them in reverse on exit.

    `serve_api` says whether the process answers HTTP (the Stripe client is only needed
    there; an API process runs the workers unless RUN_WORKERS=false). `database_url`
    replaces the settings' (the CLI resolves the embedded server once; tests).
    """
    settings.require_secrets()
    async with AsyncExitStack() as stack:
        root = _Root(stack, overrides or {})
        o = root.override

        if root.given("db"):
            db: Database = o("db")
        else:
            url = resolve_database_url(settings, database_url)
            applied = await migrate(url)
            if applied:
                log.info("migrations applied", extra={"applied": applied})
            db = await Database.connect(
                url,
                min_size=settings.db_pool_min,
                max_size=settings.db_pool_max,
                timeout=settings.db_pool_timeout_s,
            )
            root.on_stop("database", db.close)
        if root.given("audit"):
            audit: AuditLog = o("audit")
        else:
            audit = AuditLog(db)
            audit.start()
            root.on_stop("audit log", audit.stop)
        sealer: Sealer = (
            o("sealer") if root.given("sealer") else Sealer.from_key(settings.encryption_key_bytes)
        )
        metrics: Metrics = o("metrics") if root.given("metrics") else Metrics()
        hasher: Hasher = (
            o("password_hasher")
            if root.given("password_hasher")
            else Hasher.from_settings(settings)
        )
        keys: SigningKeys = (
            o("signing_keys") if root.given("signing_keys") else SigningKeys(db, sealer)
        )

        # Proxmox: every client the registry hands out reports its calls to the metrics.
        if root.given("proxmox"):
            registry: ProxmoxRegistry = o("proxmox")
        else:
            registry = proxmox_registry(sealer, metrics)
            root.on_stop("proxmox clients", registry.close)
        verifier: NodeVerifier = o("node_verifier") if root.given("node_verifier") else verify_node
        poller = node_poller(settings, db, registry)
        poller.start()
        root.on_stop("node poller", poller.stop)

        # Caddy before the workers: the worker takes the route hook in its constructor.
        if root.given("route_hook"):
            routes: CaddyRoutes | None = o("route_hook")
        else:
            routes = await root.enter("caddy routes", caddy_routes(settings))
        if root.given("caddy_reconciler"):
            reconciler: RouteReconciler | None = o("caddy_reconciler")
        else:
            reconciler = route_reconciler(settings, db, routes)
            if reconciler is not None:
                reconciler.start()
                root.on_stop("caddy reconciler", reconciler.stop)

        if root.given("wireguard_sync"):
            syncer: PeerSyncer | None = o("wireguard_sync")
        else:
            syncer = peer_syncer(settings, db)
            if syncer is not None:
                syncer.start()
                root.on_stop("wireguard sync", syncer.stop)

        if root.given("stripe_gateway"):
            gateway: StripeGateway | None = o("stripe_gateway")
        else:
            gateway = stripe_gateway(settings, serve_api=serve_api)
            if gateway is not None:
                root.on_stop("stripe gateway", gateway.close)
        sweeper = billing_sweeper(settings, db, audit, serve_api=serve_api)
        if sweeper is not None:
            sweeper.start()
            root.on_stop("billing sweep", sweeper.stop)

        # Live events: one LISTEN connection per API process, and the pruning of old events.
        if root.given("events"):
            hub: EventHub | None = o("events")
        elif serve_api:
            conninfo = db.pool.conninfo
            assert isinstance(conninfo, str)  # the pool was built from a URL
            hub = EventHub(db, conninfo, queue_size=settings.events_queue_size)
            await hub.start()
            root.on_stop("event hub", hub.stop)
            pruner = event_pruner(db, settings.events_retention_s)
            pruner.start()
            root.on_stop("event pruner", pruner.stop)
        else:
            hub = None

        # Mail: every process with SMTP_URL sends (SKIP LOCKED shares the outbox).
        if root.given("mail_sender"):
            mailer: MailSender | None = o("mail_sender")
        elif settings.mail_enabled:
            mailer = MailSender(db, settings)
            mailer.start()
            root.on_stop("mail sender", mailer.stop)
        else:
            mailer = None

        # SSH to the nodes for consoles and app commands, in processes serving the API.
        if root.given("ssh"):
            ssh: SshPool | None = o("ssh")
        elif serve_api:
            ssh = SshPool()
            root.on_stop("ssh pool", ssh.close)
        else:
            ssh = None

        # Webhooks: every process delivers (SKIP LOCKED shares the outbox).
        if root.given("webhook_sender"):
            hooks: WebhookSender | None = o("webhook_sender")
        else:
            hooks = WebhookSender(db, sealer, settings)
            hooks.start()
            root.on_stop("webhook sender", hooks.stop)
        sampler = capacity_sampler(settings, db)
        sampler.start()
        root.on_stop("capacity sampler", sampler.stop)

        worker: Worker | None = None
        if root.given("worker"):
            worker = o("worker")
        elif workers.runs_workers(settings, serve_api=serve_api):
            worker_db = await root.enter("worker database", workers.worker_database(settings, db))
            worker = started = workers.worker(
                settings,
                worker_db,
                registry,
                sealer,
                route_hook=routes,
                observer=StepTimer(metrics),
            )
            started.start()
            root.on_stop("worker", lambda: started.stop(grace=WORKER_GRACE))
            stop_status = await start_status_poller(started.ctx, settings.tenant_poll_seconds)
            root.on_stop("status poller", stop_status)
            # Usage graphs: rrddata copied from Proxmox, so a graph never calls Proxmox.
            usage = usage_collector(settings, worker_db, registry)
            usage.start()
            root.on_stop("usage collector", usage.stop)

        # The lifecycle's workers share the tenant workers' step context (their Proxmox
        # clients, clone locks and lease owner); they stop first (the stack unwinds).
        operations: OperationWorker | None = None
        if root.given("operations"):
            operations = o("operations")
        elif worker is not None:
            operations = ops = OperationWorker(
                worker.ctx,
                concurrency=settings.worker_concurrency,
                lease_seconds=settings.worker_lease_seconds,
            )
            ops.start()
            root.on_stop("operation worker", lambda: ops.stop(grace=WORKER_GRACE))
            scheduler = BackupScheduler(worker.ctx, settings, audit)
            scheduler.start()
            root.on_stop("backup scheduler", scheduler.stop)
            drain_runner = DrainRunner(worker.ctx.db, settings, audit)
            drain_runner.start()
            root.on_stop("drain runner", drain_runner.stop)
            repairs = AutoRepair(worker.ctx.db, settings, audit)
            repairs.start()
            root.on_stop("auto repair", repairs.stop)
            # The warm pool shares the tenant workers' clone locks; it stops before them.
            refiller = Refiller.from_settings(worker.ctx, settings)
            refiller.start()
            root.on_stop("warm pool refiller", lambda: refiller.stop(grace=WORKER_GRACE))

        yield Services(
            settings=settings,
            db=db,
            sealer=sealer,
            audit=audit,
            metrics=metrics,
            password_hasher=hasher,
            signing_keys=keys,
            proxmox=registry,
            node_verifier=verifier,
            route_hook=routes,
            caddy_reconciler=reconciler,
            wireguard_sync=syncer,
            stripe_gateway=gateway,
            worker=worker,
            operations=operations,
            events=hub,
            mail_sender=mailer,
            ssh=ssh,
            webhook_sender=hooks,
        )


async def run_worker_process(
    settings: Settings, *, ready: Callable[[], None] | None = None
) -> None:
    """`controlplane worker`: the background services without the API, until SIGTERM/SIGINT.
    `ready` is called once they run (a supervising `serve` waits for it)."""
    async with bootstrap(settings, serve_api=False):
        if ready is not None:
            ready()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.info("worker running", extra={"concurrency": settings.worker_concurrency})
        try:
            await stop.wait()
        finally:
            log.info("worker stopping")
