"""Routes follow the database: the reconciler in the app's lifespan against a real Caddy."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from controlplane.caddy.routes import CaddyRoutes, route_id
from controlplane.caddy.sync import desired_routes
from controlplane.provisioner.addresses import AddressPolicy
from tests.caddy.conftest import (
    BASE_DOMAIN,
    TENANT_NETWORK,
    Caddy,
    free_port,
    load_empty,
    our_routes,
)
from tests.caddy.helpers import add_tenant, eventually, set_status
from tests.conftest import make_settings


def app(addr: str) -> dict[str, Any]:
    """`127.100.0.3:41234` -> the tenant's address and app port."""
    host, port = addr.rsplit(":", 1)
    return {"ip": host, "app_port": int(port)}


async def test_desired_routes_follow_the_tenant_rows(app: object) -> None:
    db = app.state.cp.db  # type: ignore[attr-defined]
    active = await add_tenant(db, "act", "active", ip="10.0.0.5", app_port=3000)
    suspended = await add_tenant(db, "sus", "suspended", ip="10.0.0.6", app_port=3001)
    suspending = await add_tenant(db, "sing", "suspending", ip="10.0.0.7")
    resuming = await add_tenant(db, "res", "resuming", ip="10.0.0.8")
    for sub, status in [
        ("prov", "provisioning"),
        ("gone", "deleted"),
        ("err", "error"),
        ("del", "deleting"),
    ]:
        await add_tenant(db, sub, status)
    await add_tenant(db, "noip", "active", ip=None)

    routes = {r.tenant_id: r for r in await desired_routes(db)}
    assert set(routes) == {active, suspended, suspending, resuming}
    assert routes[active].upstream == "10.0.0.5:3000" and not routes[active].suspended
    assert routes[suspended].suspended and routes[suspending].suspended
    assert not routes[resuming].suspended and routes[resuming].upstream == "10.0.0.8:8080"


async def test_a_pinned_address_outside_the_rules_gets_no_route(app: object) -> None:
    """A pin from before the address rules (or outside narrowed networks) is never proxied."""
    db = app.state.cp.db  # type: ignore[attr-defined]
    fine = await add_tenant(db, "fine", "active", ip="10.0.0.5")
    await add_tenant(db, "inside", "active", ip="127.0.0.5")
    await add_tenant(db, "linklocal", "suspended", ip="169.254.169.254")
    policy = AddressPolicy.build(networks=["10.0.0.0/8"])
    assert [r.tenant_id for r in await desired_routes(db, policy)] == [fine]


async def test_app_reconciles_at_start_and_heals_a_wiped_caddy(
    caddy: Caddy, database_url: str, upstream: Callable[[str], str], web
) -> None:
    from controlplane.app import create_app

    settings = make_settings(
        database_url,
        caddy_admin_url=caddy.admin_url,
        caddy_listen=[caddy.http_addr],
        caddy_automatic_https=False,
        caddy_reconcile_seconds=0.2,
        base_domain=BASE_DOMAIN,
        tenant_networks=[TENANT_NETWORK],
    )
    application = create_app(settings)
    # Rows written before the app starts: the first pass must pick them up.
    from controlplane.db import Database

    db = await Database.connect(database_url, min_size=1, max_size=2)
    try:
        acme = await add_tenant(db, "acme", "active", **app(upstream("acme")))
        paused = await add_tenant(db, "paused", "suspended", **app(upstream("paused")))
        await add_tenant(db, "gone", "deleted", **app(upstream("gone")))
        await add_tenant(db, "new", "provisioning", **app(upstream("new")))
    finally:
        await db.close()

    async with application.router.lifespan_context(application):
        state = application.state.cp
        assert isinstance(state.route_hook, CaddyRoutes)
        await eventually(lambda: _status(web, "acme", 200))
        assert (await web("acme")).text.startswith("hello from acme")
        assert (await web("paused")).status_code == 503
        assert (await web("gone")).status_code == 404
        assert (await web("new")).status_code == 404  # not active yet: no route

        await load_empty(caddy)  # wiped behind our back
        await eventually(lambda: _status(web, "acme", 200), timeout=3)
        assert (await web("paused")).status_code == 503

        await set_status(state.db, acme, "suspended")
        await eventually(lambda: _status(web, "acme", 503), timeout=3)
        await set_status(state.db, paused, "deleted")
        await eventually(lambda: _status(web, "paused", 404), timeout=3)
        current = [r["@id"] for r in await our_routes(caddy)]
        assert current.count(route_id(acme)) == 1 and route_id(paused) not in current

    # Stopped with the app: the route hook's HTTP client is closed.
    assert application.state.cp.route_hook._http.is_closed


async def _status(web, subdomain: str, status: int) -> bool:  # type: ignore[no-untyped-def]
    try:
        return (await web(subdomain)).status_code == status
    except httpx.HTTPError:
        return False  # the listener is not back yet


async def test_caddy_down_is_logged_and_never_stops_the_app(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    from controlplane.app import create_app

    settings = make_settings(
        database_url,
        caddy_admin_url=f"http://127.0.0.1:{free_port()}",
        caddy_reconcile_seconds=0.05,
    )
    application = create_app(settings)
    with caplog.at_level(logging.WARNING, logger="controlplane.caddy.sync"):
        async with application.router.lifespan_context(application):
            reconciler = application.state.cp.caddy_reconciler
            await eventually(lambda: _passes(reconciler, 3))
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                assert (await client.get("/healthz")).status_code == 200
    messages = [r.getMessage() for r in caplog.records if r.name == "controlplane.caddy.sync"]
    assert any("retrying next period" in m and "unreachable" in m for m in messages), messages


async def _passes(reconciler: object, n: int) -> bool:
    return reconciler.passes >= n  # type: ignore[attr-defined]


async def test_without_caddy_admin_url_nothing_runs(app: object) -> None:
    assert app.state.cp.route_hook is None  # type: ignore[attr-defined]
    assert app.state.cp.caddy_reconciler is None  # type: ignore[attr-defined]
