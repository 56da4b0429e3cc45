"""The ASGI app: its routers, its middleware, and a lifespan that enters the composition root.

Nothing connects at import time. `create_app(settings)` returns an app whose lifespan runs
`runtime.bootstrap` (pool, migrations, background services; closed in reverse on shutdown)
and keeps the services it yields in `app.state.cp`, where the dependencies in `deps.py`
find them.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.cors import CORSMiddleware

from controlplane.admin.routes import router as admin_router
from controlplane.admin.web import database_unavailable as admin_database_unavailable
from controlplane.apps.routes import router as apps_router
from controlplane.audit.routes import router as audit_router
from controlplane.auth.mail_routes import router as mail_router
from controlplane.auth.routes import RATE_LIMITED_PATHS
from controlplane.auth.routes import router as auth_router
from controlplane.billing.routes import router as billing_router
from controlplane.caddy.api import ASK_PATH
from controlplane.caddy.api import router as caddy_router
from controlplane.capacity.routes import router as capacity_router
from controlplane.config import Settings
from controlplane.console.routes import router as console_router
from controlplane.db.gateway import Unavailable as DatabaseUnavailable
from controlplane.events.routes import router as events_router
from controlplane.health import router as health_router
from controlplane.metrics import Metrics
from controlplane.metrics.routes import install_metrics
from controlplane.nodes.routes import router as nodes_router
from controlplane.operations.routes import admin_router as lifecycle_router
from controlplane.operations.routes import fleet_router
from controlplane.operations.routes import user_router as user_lifecycle_router
from controlplane.portal.site import install_portal
from controlplane.projects.routes import router as projects_router
from controlplane.provisioner.routes import router as orphans_router
from controlplane.runtime import Overrides, bootstrap
from controlplane.sso.routes import router as sso_router
from controlplane.sysconfig.routes import router as settings_router
from controlplane.tenants.routes import router as tenants_router
from controlplane.usage.routes import router as usage_router
from controlplane.users.project_routes import router as user_projects_router
from controlplane.users.routes import router as users_router
from controlplane.users.tenant_routes import router as user_tenants_router
from controlplane.warmpool.routes import router as spares_router
from controlplane.web.docs import install_docs
from controlplane.web.errors import ErrorResponse, install_error_handlers
from controlplane.web.middleware import AppErrorsMiddleware, EdgeMiddleware
from controlplane.web.ratelimit import RateLimitMiddleware
from controlplane.web.ratestore import rate_store
from controlplane.webhooks.routes import router as webhooks_router
from controlplane.wireguard.routes import router as wireguard_router

log = logging.getLogger(__name__)


def create_app(
    settings: Settings, *, database_url: str | None = None, overrides: Overrides | None = None
) -> FastAPI:
    """Build the app. `database_url` overrides the settings (tests, the demo); `overrides`
    replaces services (tests)."""
    # Built here, not in the lifespan: the HTTP middleware needs it when the app is built.
    metrics = (overrides or {}).get("metrics") or Metrics()
    given: Overrides = {**(overrides or {}), "metrics": metrics}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with bootstrap(
            settings, serve_api=True, overrides=given, database_url=database_url
        ) as services:
            app.state.cp = services
            yield

    app = FastAPI(
        title="Control plane for LXC on Proxmox VE",
        version="0.1.0",
        description="Multi-tenant LXC containers on Proxmox VE: nodes, projects, tenants.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # Any route that reads the database may answer this while PostgreSQL is away.
        responses={
            503: {
                "model": ErrorResponse,
                "description": "the database cannot be reached (`database_unavailable`); "
                "retry after `Retry-After` seconds",
            }
        },
    )
    install_error_handlers(app)
    # Dashboard pages show a database outage in their own banner or error page.
    app.add_exception_handler(DatabaseUnavailable, admin_database_unavailable)
    install_docs(app)
    static = Path(str(resources.files("controlplane").joinpath("static")))
    app.mount("/static", StaticFiles(directory=static), name="static")
    admin_static = Path(str(resources.files("controlplane.admin").joinpath("static")))
    app.mount("/admin/static", StaticFiles(directory=admin_static), name="admin-static")
    app.include_router(admin_router)
    for router in (
        health_router,
        nodes_router,
        projects_router,
        spares_router,
        tenants_router,
        lifecycle_router,
        fleet_router,
        orphans_router,
        audit_router,
        usage_router,
        webhooks_router,
        settings_router,
        capacity_router,
    ):
        app.include_router(router)
    for router in (
        auth_router,
        users_router,
        user_tenants_router,
        user_lifecycle_router,
        user_projects_router,
    ):
        app.include_router(router)
    for router in (sso_router, events_router, mail_router, console_router, apps_router):
        app.include_router(router)
    for router in (caddy_router, wireguard_router, billing_router):
        app.include_router(router)
    install_portal(app, settings.portal_dir)  # after every route: it answers the rest

    install_metrics(app)

    # add_middleware wraps: the last added runs first (outermost). Four layers, not nine:
    # each one wraps `send` once more for every response (BENCHMARKS.md P2).
    app.add_middleware(AppErrorsMiddleware)  # 500 catcher, no-store + Vary on /admin pages
    # Per-IP limits inside CORS, so a browser can read a 429 and its Retry-After.
    app.add_middleware(
        RateLimitMiddleware,
        tight=settings.rate_limit_auth,
        tight_paths=RATE_LIMITED_PATHS,
        api=settings.rate_limit_api,
        exempt_bearer=settings.api_token.get_secret_value() if settings.api_token else None,
        own_limits={ASK_PATH: settings.rate_limit_ask},
        store=rate_store(settings.rate_limit_storage, lambda: app.state.cp.db),
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
        expose_headers=["X-Request-ID", "Location", "Retry-After"],
        max_age=600,
    )
    # Outermost: client address, metrics of every answer, security headers, request id,
    # body limit.
    app.add_middleware(
        EdgeMiddleware,
        metrics=metrics,
        max_bytes=settings.max_body_bytes,
        trusted_proxies=settings.trusted_proxies,
    )
    app.state.metrics = metrics
    return app
