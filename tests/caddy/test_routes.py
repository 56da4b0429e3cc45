"""`CaddyRoutes` against a real Caddy: requests through it prove what each route does."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest

from controlplane.caddy.routes import CaddyError, CaddyRoutes, DesiredRoute, route_id, upstream_of
from tests.caddy.conftest import SERVER, Caddy, load_empty, our_routes


def ids(routes: list[dict[str, object]]) -> list[object]:
    return [r.get("@id") for r in routes]


async def test_active_suspended_removed(
    routes: CaddyRoutes, caddy: Caddy, upstream: Callable[[str], str], web
) -> None:
    tenant = uuid.uuid4()
    app = upstream("acme-app")
    await routes.upsert_active(tenant, "acme", app)

    r = await web("acme", "/index.txt")
    assert r.status_code == 200
    assert r.text == "hello from acme-app path=/index.txt"
    r = await web("other")
    assert r.status_code == 404 and r.text == "unknown host"  # the operator's fallback

    await routes.set_suspended(tenant, "acme")
    r = await web("acme")
    assert r.status_code == 503
    assert r.headers["content-type"].startswith("text/html")
    assert "acme.tenants.test" in r.text and "suspended" in r.text
    assert "hello from" not in r.text

    await routes.upsert_active(tenant, "acme", app)  # resumed
    assert (await web("acme")).status_code == 200

    await routes.remove(tenant)
    r = await web("acme")
    assert r.status_code == 404 and r.text == "unknown host"
    assert route_id(tenant) not in ids(await our_routes(caddy))
    await routes.remove(tenant)  # removing a missing route is fine


async def test_upsert_twice_leaves_one_route_and_follows_the_upstream(
    routes: CaddyRoutes, caddy: Caddy, upstream: Callable[[str], str], web
) -> None:
    tenant = uuid.uuid4()
    first, second = upstream("first"), upstream("second")
    await routes.upsert_active(tenant, "twice", first)
    await routes.upsert_active(tenant, "twice", first)
    await routes.upsert_active(tenant, "twice", second)
    current = await our_routes(caddy)
    assert ids(current).count(route_id(tenant)) == 1
    assert ids(current)[-1] == "operator-fallback"  # inserted before the fallback
    assert (await web("twice")).text.startswith("hello from second")


async def test_remove_deletes_every_duplicate(
    routes: CaddyRoutes, caddy: Caddy, upstream: Callable[[str], str], web
) -> None:
    tenant = uuid.uuid4()
    route = routes.active_route(tenant, "dup", upstream("dup"))
    async with httpx.AsyncClient(trust_env=False) as http:
        for _ in range(3):  # Caddy 2.6 accepts the same @id several times
            r = await http.put(
                f"{caddy.admin_url}/config/apps/http/servers/{SERVER}/routes/0", json=route
            )
            assert r.status_code == 200
    assert ids(await our_routes(caddy)).count(route_id(tenant)) == 3
    await routes.remove(tenant)
    assert route_id(tenant) not in ids(await our_routes(caddy))
    assert (await web("dup")).status_code == 404


async def test_reconcile_adds_fixes_collapses_removes_and_keeps_foreign(
    routes: CaddyRoutes, caddy: Caddy, upstream: Callable[[str], str], web
) -> None:
    live, changed, stale, dup, provisioning = (uuid.uuid4() for _ in range(5))
    missing = uuid.uuid4()
    app_live, app_changed, app_new = upstream("live"), upstream("changed"), upstream("new")
    foreign = {
        "@id": "operator-status",
        "match": [{"host": ["status.tenants.test"]}],
        "handle": [{"handler": "static_response", "body": "operator page"}],
        "terminal": True,
    }
    async with httpx.AsyncClient(trust_env=False) as http:
        r = await http.put(
            f"{caddy.admin_url}/config/apps/http/servers/{SERVER}/routes/0", json=foreign
        )
        assert r.status_code == 200
    await routes.upsert_active(live, "live", app_live)
    await routes.upsert_active(changed, "changed", upstream("old"))  # points at the wrong app
    await routes.upsert_active(stale, "stale", app_live)  # a tenant that is gone
    await routes.upsert_active(provisioning, "prov", app_live)  # the provisioner's, for now
    dup_route = routes.active_route(dup, "dup", app_live)
    async with httpx.AsyncClient(trust_env=False) as http:
        for _ in range(2):
            await http.put(
                f"{caddy.admin_url}/config/apps/http/servers/{SERVER}/routes/0", json=dup_route
            )

    desired = [
        DesiredRoute(live, "live", app_live, suspended=False),
        DesiredRoute(changed, "changed", app_changed, suspended=False),
        DesiredRoute(dup, "dup", app_live, suspended=True),
        DesiredRoute(missing, "missing", app_new, suspended=False),
    ]
    result = await routes.reconcile(desired, keep=[provisioning])
    assert (result.added, result.updated, result.removed) == (1, 2, 2)

    current = ids(await our_routes(caddy))
    for tenant in (live, changed, dup, missing, provisioning):
        assert current.count(route_id(tenant)) == 1, tenant
    assert route_id(stale) not in current
    assert "operator-status" in current and current[-1] == "operator-fallback"
    assert (await web("live")).text.startswith("hello from live")
    assert (await web("changed")).text.startswith("hello from changed")
    assert (await web("missing")).text.startswith("hello from new")
    assert (await web("dup")).status_code == 503
    assert (await web("stale")).status_code == 404
    assert (await web("prov")).text.startswith("hello from live")
    assert (await web("status")).text == "operator page"

    again = await routes.reconcile(desired, keep=[provisioning])
    assert not again.changed  # nothing to do: no write at all


async def test_reconcile_heals_a_wiped_caddy(
    routes: CaddyRoutes, caddy: Caddy, upstream: Callable[[str], str], web
) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    desired = [
        DesiredRoute(a, "alpha", upstream("alpha"), suspended=False),
        DesiredRoute(b, "beta", None, suspended=True),
    ]
    await routes.reconcile(desired)
    assert (await web("alpha")).status_code == 200

    await load_empty(caddy)  # Caddy restarted with an empty config: no server, no listener
    with pytest.raises(httpx.ConnectError):
        await web("alpha")

    result = await routes.reconcile(desired)
    assert result.created_server and result.added == 2
    assert (await web("alpha")).text.startswith("hello from alpha")
    assert (await web("beta")).status_code == 503
    r = await web("nobody")
    assert r.status_code == 404 and r.text == "unknown host\n"  # our fallback came with it
    assert not (await routes.reconcile(desired)).changed


async def test_upsert_creates_a_missing_server(
    routes: CaddyRoutes, caddy: Caddy, upstream: Callable[[str], str], web
) -> None:
    await load_empty(caddy)
    tenant = uuid.uuid4()
    await routes.upsert_active(tenant, "early", upstream("early"))
    assert (await web("early")).text.startswith("hello from early")
    assert (await web("late")).status_code == 404
    assert ids(await our_routes(caddy)) == [route_id(tenant), "controlplane-fallback"]


async def test_server_without_routes_gets_them_and_a_fallback(
    routes: CaddyRoutes, caddy: Caddy, upstream: Callable[[str], str], web
) -> None:
    async with httpx.AsyncClient(trust_env=False) as http:
        r = await http.patch(f"{caddy.admin_url}/config/apps/http/servers/{SERVER}/routes", json=[])
        assert r.status_code == 200
    tenant = uuid.uuid4()
    app = upstream("empty")
    await routes.upsert_active(tenant, "empty", app)
    assert ids(await our_routes(caddy)) == [route_id(tenant), "controlplane-fallback"]
    assert (await web("empty")).status_code == 200

    async with httpx.AsyncClient(trust_env=False) as http:  # emptied again: reconcile heals it
        await http.patch(f"{caddy.admin_url}/config/apps/http/servers/{SERVER}/routes", json=[])
    assert (await web("empty")).status_code == 200 and (await web("empty")).text == ""
    result = await routes.reconcile([DesiredRoute(tenant, "empty", app, suspended=False)])
    assert result.added == 1 and not result.created_server
    assert ids(await our_routes(caddy)) == [route_id(tenant), "controlplane-fallback"]
    assert (await web("empty")).text.startswith("hello from empty")


async def test_unreachable_caddy_raises_a_clear_error() -> None:
    from tests.caddy.conftest import free_port

    async with httpx.AsyncClient(timeout=2, trust_env=False) as http:
        routes = CaddyRoutes(
            http, admin_url=f"http://127.0.0.1:{free_port()}", server=SERVER, base_domain="x.test"
        )
        with pytest.raises(CaddyError, match="unreachable"):
            await routes.upsert_active(uuid.uuid4(), "a", "127.0.0.1:1")
        with pytest.raises(CaddyError, match="unreachable"):
            await routes.reconcile([])


def test_upstream_of() -> None:
    assert upstream_of("10.0.0.5", 8080) == "10.0.0.5:8080"
    assert upstream_of("10.0.0.5/24", 80) == "10.0.0.5:80"
    assert upstream_of("fd00::5/64", 80) == "[fd00::5]:80"


def test_suspended_page_escapes_the_host() -> None:
    routes = CaddyRoutes(httpx.AsyncClient(), admin_url="http://x", server="s", base_domain="<b>")
    body = routes.suspended_route("t", "a")["handle"][0]["body"]
    assert "<b>" not in body and "&lt;b&gt;" in body


OPERATOR_CP = {
    "@id": "operator-cp",
    "match": [{"host": ["cp.tenants.test"]}],
    "handle": [{"handler": "static_response", "body": "operator control plane"}],
    "terminal": True,
}


async def _put_operator_route(caddy: Caddy, route: dict[str, object]) -> None:
    async with httpx.AsyncClient(trust_env=False) as http:
        r = await http.put(
            f"{caddy.admin_url}/config/apps/http/servers/{SERVER}/routes/0", json=route
        )
        assert r.status_code == 200


async def test_a_tenant_route_never_goes_before_the_operators(
    routes: CaddyRoutes, caddy: Caddy, upstream: Callable[[str], str], web
) -> None:
    """A tenant named like an operator host (a row from before the reserved names, or a
    name reserved later) still loses: its route sits after every operator route."""
    await _put_operator_route(caddy, OPERATOR_CP)
    tenant = uuid.uuid4()
    await routes.upsert_active(tenant, "cp", upstream("tenant-cp"))
    assert (await web("cp")).text == "operator control plane"
    assert ids(await our_routes(caddy)) == ["operator-cp", route_id(tenant), "operator-fallback"]
    other = uuid.uuid4()
    await routes.set_suspended(other, "other")
    assert ids(await our_routes(caddy))[-1] == "operator-fallback"
    assert (await web("other")).status_code == 503


async def test_reconcile_moves_tenant_routes_after_the_operators(
    routes: CaddyRoutes, caddy: Caddy, upstream: Callable[[str], str], web
) -> None:
    """Routes written at index 0 by an older version are moved behind the operator's."""
    tenant, added = uuid.uuid4(), uuid.uuid4()
    app = upstream("tenant-cp")
    await _put_operator_route(caddy, OPERATOR_CP)
    await _put_operator_route(caddy, routes.active_route(tenant, "cp", app))  # index 0
    assert (await web("cp")).text.startswith("hello from tenant-cp")  # the old order
    desired = [
        DesiredRoute(tenant, "cp", app, suspended=False),
        DesiredRoute(added, "added", upstream("added"), suspended=False),
    ]
    result = await routes.reconcile(desired)
    assert result.changed and result.added == 1
    assert ids(await our_routes(caddy)) == [
        "operator-cp",
        route_id(tenant),
        route_id(added),
        "operator-fallback",
    ]
    assert (await web("cp")).text == "operator control plane"
    assert (await web("added")).text.startswith("hello from added")
    assert not (await routes.reconcile(desired)).changed


async def test_a_new_base_domain_rewrites_every_route(
    routes: CaddyRoutes, caddy: Caddy, upstream: Callable[[str], str]
) -> None:
    """BASE_DOMAIN changed in the environment: the first reconcile after the restart moves
    every tenant to its new host (the old host falls through to the fallback)."""
    a, b = uuid.uuid4(), uuid.uuid4()
    desired = [
        DesiredRoute(a, "alpha", upstream("alpha"), suspended=False),
        DesiredRoute(b, "beta", None, suspended=True),
    ]
    await routes.reconcile(desired)
    async with httpx.AsyncClient(timeout=5, trust_env=False) as http:
        moved = CaddyRoutes(http, admin_url=caddy.admin_url, server=SERVER, base_domain="apps.test")
        result = await moved.reconcile(desired)
        assert result.updated == 2 and not result.added and not result.removed

        async def get(host: str) -> httpx.Response:
            return await http.get(
                f"http://{caddy.http_addr}/", headers={"Host": host, "Connection": "close"}
            )

        assert (await get("alpha.apps.test")).text.startswith("hello from alpha")
        assert (await get("beta.apps.test")).status_code == 503
        assert (await get("alpha.tenants.test")).status_code == 404
