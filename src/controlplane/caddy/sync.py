"""Keep Caddy's tenant routes equal to the database, at start-up and every period.

The database is the truth: `desired_routes(db)` reads which tenants should have a route and
what it should be; `RouteReconciler` hands that list to `CaddyRoutes.reconcile()` every
`CADDY_RECONCILE_SECONDS`, so a route lost by a failed hook call, a Caddy restarted with an
empty config or a route edited by hand is repaired within one period. Routes of tenants still
being provisioned are left to the provisioner (it upserts them before the tenant turns active).
Failures are logged and retried next period; they never stop the process.

With `CADDY_ADMIN_URL` set, the composition root (`runtime.bootstrap`) opens `caddy_routes`
(the route hook the provisioner calls) before the workers and starts `route_reconciler`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from controlplane.caddy.routes import CaddyError, CaddyRoutes, DesiredRoute, upstream_of
from controlplane.config import Settings
from controlplane.db import Database, DatabaseError, load_queries
from controlplane.periodic import Periodic
from controlplane.provisioner.addresses import AddressPolicy

log = logging.getLogger(__name__)
_Q = load_queries("controlplane.caddy")

SUSPENDED_STATUSES = frozenset({"suspended", "suspending"})


async def desired_routes(
    db: Database, addresses: AddressPolicy | None = None
) -> list[DesiredRoute]:
    """One route per tenant that should have one.

    `active` and `resuming` tenants are proxied to their container; `suspended` and
    `suspending` ones get the suspended page. A pinned address outside the address rules
    (pinned before them, or TENANT_NETWORKS narrowed since) gets no route at all: Caddy
    never proxies a public host name to it.
    """
    rows = await db.fetch_all(_Q["desired_routes"])
    if addresses is not None:
        refused = [row for row in rows if addresses.refusal(row["ip_address"])]
        for row in refused:
            log.warning(
                "not routing a tenant whose pinned address breaks the address rules",
                extra={"tenant": str(row["id"]), "reason": addresses.refusal(row["ip_address"])},
            )
        rows = [row for row in rows if row not in refused]
    return [
        DesiredRoute(
            tenant_id=row["id"],
            subdomain=row["subdomain"],
            upstream=upstream_of(row["ip_address"], row["app_port"]),
            suspended=row["status"] in SUSPENDED_STATUSES,
        )
        for row in rows
    ]


async def provisioning_tenants(db: Database) -> list[str]:
    """Tenants whose route the provisioner is setting up: reconciliation leaves it alone."""
    return [str(row["id"]) for row in await db.fetch_all(_Q["provisioning_tenants"])]


class RouteReconciler:
    """Runs `reconcile()` now and then every `interval` seconds until stopped."""

    def __init__(
        self,
        db: Database,
        routes: CaddyRoutes,
        *,
        interval: float,
        addresses: AddressPolicy | None = None,
    ) -> None:
        self._db = db
        self._addresses = addresses
        self._routes = routes
        self._periodic = Periodic("caddy-reconciler", self.run_once, interval)
        self.passes = 0  # completed passes, successful or not (read by tests)

    async def run_once(self) -> bool:
        """One pass; True when Caddy now matches the database. Never raises."""
        try:
            desired = await desired_routes(self._db, self._addresses)
            keep = await provisioning_tenants(self._db)
            result = await self._routes.reconcile(desired, keep=keep)
        except CaddyError as exc:
            log.warning("Caddy route reconciliation failed; retrying next period: %s", exc)
            return False
        except (DatabaseError, OSError) as exc:
            log.warning("Caddy route reconciliation could not read the database: %s", exc)
            return False
        except Exception:
            log.exception("Caddy route reconciliation failed unexpectedly; retrying next period")
            return False
        finally:
            self.passes += 1
        if result.changed:
            log.info(
                "Caddy routes reconciled",
                extra={
                    "added": result.added,
                    "updated": result.updated,
                    "removed": result.removed,
                    "created_server": result.created_server,
                },
            )
        return True

    def start(self) -> None:
        self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()


@asynccontextmanager
async def caddy_routes(settings: Settings) -> AsyncIterator[CaddyRoutes | None]:
    """The route hook, on an HTTP client of its own; None without `CADDY_ADMIN_URL`."""
    if not settings.caddy_admin_url:
        yield None
        return
    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=3.0), trust_env=False) as http:
        log.info(
            "Caddy routes enabled",
            extra={"admin_url": settings.caddy_admin_url, "server": settings.caddy_server},
        )
        yield CaddyRoutes(
            http,
            admin_url=settings.caddy_admin_url,
            server=settings.caddy_server,
            base_domain=settings.base_domain,
            listen=settings.caddy_listen,
            automatic_https=settings.caddy_automatic_https,
        )


def route_reconciler(
    settings: Settings, db: Database, routes: CaddyRoutes | None
) -> RouteReconciler | None:
    """The reconciler of `routes` (not started yet); None without a route hook."""
    if routes is None:
        return None
    return RouteReconciler(
        db,
        routes,
        interval=settings.caddy_reconcile_seconds,
        addresses=AddressPolicy.from_settings(settings),
    )
