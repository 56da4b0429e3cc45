"""One route per tenant in a Caddy http server, through Caddy's admin API (Caddy 2.6).

Every route we own has the `@id` `tenant-<tenant id>` and matches `{subdomain}.{base domain}`:

- an active tenant's route proxies to its container (`reverse_proxy` to `ip:app_port`);
- a suspended tenant's route answers a 503 page that says the site is suspended;
- a deleted tenant has no route, so its host falls through to the fallback (404).

Tenant routes always come **after** every route of the operator's that has a matcher, and
before the first catch-all (a route without a matcher, such as the fallback): a tenant whose
name matches one of the operator's hosts can never win over the operator's route for it.

Caddy 2.6 accepts duplicate `@id`s, so a route is upserted by `PATCH /id/<id>` and inserted
(after the operator's routes, before the first catch-all) only when that answers 404.
`reconcile()` makes the server's routes match a list of desired routes in one write: missing
ones added, stale and duplicate ones of ours removed, changed ones replaced, ours moved behind
the operator's, routes of anybody else left in their order. When the server itself is missing
(Caddy restarted with an empty config) it is created with the fallback route.

    CaddyError    Caddy cannot be reached or refused a change; the message says what it said
"""

from __future__ import annotations

import html
import ipaddress
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx

log = logging.getLogger(__name__)

ID_PREFIX = "tenant-"
FALLBACK_ID = "controlplane-fallback"
# Removing duplicates one DELETE at a time: a bound so a misbehaving Caddy cannot loop us.
_MAX_DUPLICATES = 100
# Safe to send twice. Not PUT: on an array index Caddy inserts, so a second PUT duplicates.
_IDEMPOTENT = frozenset({"GET", "PATCH", "DELETE"})


class CaddyError(Exception):
    """Caddy's admin API cannot be reached or refused a request."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class DesiredRoute:
    """What one tenant's route should be. `upstream` may be None only when suspended."""

    tenant_id: UUID | str
    subdomain: str
    upstream: str | None
    suspended: bool


@dataclass(frozen=True)
class ReconcileResult:
    added: int = 0
    updated: int = 0
    removed: int = 0
    created_server: bool = False
    moved: bool = False  # ours were moved behind the operator's routes

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed or self.created_server or self.moved)


def route_id(tenant_id: UUID | str) -> str:
    return f"{ID_PREFIX}{tenant_id}"


def is_ours(route: Any) -> bool:
    rid = route.get("@id") if isinstance(route, dict) else None
    return isinstance(rid, str) and rid.startswith(ID_PREFIX)


def is_catch_all(route: Any) -> bool:
    """A route that matches every request (no matcher): everything after it is shadowed."""
    return not (isinstance(route, dict) and route.get("match"))


def tenant_slot(routes: Sequence[Any]) -> int:
    """Where tenant routes go: before the first catch-all route that is not ours."""
    for index, route in enumerate(routes):
        if not is_ours(route) and is_catch_all(route):
            return index
    return len(routes)


def ordered(routes: Sequence[Any]) -> list[Any]:
    """`routes` with ours moved behind the operator's matched routes, each side in order."""
    foreign = [r for r in routes if not is_ours(r)]
    slot = tenant_slot(foreign)
    return foreign[:slot] + [r for r in routes if is_ours(r)] + foreign[slot:]


def upstream_of(ip_address: str, port: int) -> str:
    """`10.0.0.5/24` + 8080 -> `10.0.0.5:8080`; IPv6 addresses get brackets."""
    host = ip_address.strip().split("/", 1)[0]
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass  # a host name: Caddy resolves it
    return f"{host}:{port}"


def suspended_page(host: str) -> str:
    name = html.escape(host)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{name} is suspended</title></head><body>"
        "<h1>This site is suspended</h1>"
        f"<p>{name} is not available because its account has been suspended. "
        "If this is your site, please contact the operator to restore it.</p>"
        "</body></html>"
    )


def fallback_route() -> dict[str, Any]:
    return {
        "@id": FALLBACK_ID,
        "handle": [{"handler": "static_response", "status_code": 404, "body": "unknown host\n"}],
    }


class CaddyRoutes:
    """Tenant routes in one Caddy http server, over an injected `httpx.AsyncClient`.

    `listen` and `automatic_https` are only used when the server is missing and gets created.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        admin_url: str,
        server: str,
        base_domain: str,
        listen: Sequence[str] = (":443",),
        automatic_https: bool = True,
    ) -> None:
        self._http = http
        self._admin = admin_url.rstrip("/")
        self.server = server
        self.base_domain = base_domain.strip(".").lower()
        self._listen = list(listen)
        self._automatic_https = automatic_https
        self._server_path = f"/config/apps/http/servers/{server}"
        self._routes_path = f"{self._server_path}/routes"

    # --- route documents ---------------------------------------------------------------

    def host(self, subdomain: str) -> str:
        return f"{subdomain.lower()}.{self.base_domain}"

    def active_route(self, tenant_id: UUID | str, subdomain: str, upstream: str) -> dict[str, Any]:
        return {
            "@id": route_id(tenant_id),
            "match": [{"host": [self.host(subdomain)]}],
            "handle": [{"handler": "reverse_proxy", "upstreams": [{"dial": upstream}]}],
            "terminal": True,
        }

    def suspended_route(self, tenant_id: UUID | str, subdomain: str) -> dict[str, Any]:
        return {
            "@id": route_id(tenant_id),
            "match": [{"host": [self.host(subdomain)]}],
            "handle": [
                {
                    "handler": "static_response",
                    "status_code": 503,
                    "headers": {
                        "Content-Type": ["text/html; charset=utf-8"],
                        "Cache-Control": ["no-store"],
                    },
                    "body": suspended_page(self.host(subdomain)),
                }
            ],
            "terminal": True,
        }

    def route_for(self, desired: DesiredRoute) -> dict[str, Any]:
        if desired.suspended:
            return self.suspended_route(desired.tenant_id, desired.subdomain)
        if not desired.upstream:
            raise ValueError(f"tenant {desired.tenant_id}: an active route needs an upstream")
        return self.active_route(desired.tenant_id, desired.subdomain, desired.upstream)

    def server_document(self, routes: list[dict[str, Any]]) -> dict[str, Any]:
        doc: dict[str, Any] = {"listen": self._listen, "routes": routes}
        if not self._automatic_https:
            doc["automatic_https"] = {"disable": True}
        return doc

    # --- the hook the provisioner calls --------------------------------------------------

    async def upsert_active(self, tenant_id: UUID | str, subdomain: str, upstream: str) -> None:
        """Route the tenant's host to `upstream` (`ip:port`); safe to repeat."""
        await self._upsert(self.active_route(tenant_id, subdomain, upstream))

    async def set_suspended(self, tenant_id: UUID | str, subdomain: str) -> None:
        """Answer the tenant's host with the 503 "suspended" page; safe to repeat."""
        await self._upsert(self.suspended_route(tenant_id, subdomain))

    async def remove(self, tenant_id: UUID | str) -> None:
        """Remove the tenant's route (every copy of it); a missing route is fine."""
        path = f"/id/{route_id(tenant_id)}"
        for _ in range(_MAX_DUPLICATES):
            response = await self._call("DELETE", path, allow=(404,))
            if response.status_code == 404:
                return
        raise CaddyError(
            f"route {route_id(tenant_id)} still present after {_MAX_DUPLICATES} deletes"
        )

    async def reconcile(
        self, desired: Iterable[DesiredRoute], *, keep: Iterable[UUID | str] = ()
    ) -> ReconcileResult:
        """Make the server's routes of ours exactly `desired`, in one write when needed.

        Routes of the tenants in `keep` (being provisioned: the provisioner owns their route
        until they are active) are left as they are, neither added nor removed.
        """
        want: dict[str, dict[str, Any]] = {}
        for item in desired:
            want[route_id(item.tenant_id)] = self.route_for(item)
        hands_off = {route_id(tenant_id) for tenant_id in keep} - want.keys()
        server = await self._get(self._server_path)
        if not isinstance(server, dict):
            await self._create_server([*want.values(), fallback_route()])
            return ReconcileResult(added=len(want), created_server=True)

        current = server.get("routes")
        routes: list[Any] = current if isinstance(current, list) else []
        kept: list[Any] = []
        seen: set[str] = set()
        updated = removed = 0
        for route in routes:
            rid = route.get("@id") if isinstance(route, dict) else None
            if not is_ours(route) or rid in hands_off:
                kept.append(route)  # not ours (or not ours to judge now): leave it alone
            elif rid in seen or rid not in want:
                removed += 1  # a duplicate, or a tenant that is no longer live
            else:
                seen.add(rid)
                if route != want[rid]:
                    updated += 1
                kept.append(want[rid])
        missing = [route for rid, route in want.items() if rid not in seen]
        if not routes:
            kept.append(fallback_route())  # an empty server: give it the fallback back
        moved = ordered(kept) != kept
        if not (missing or updated or removed or moved or not routes):
            return ReconcileResult()
        foreign = [r for r in kept if not is_ours(r)]
        slot = tenant_slot(foreign)
        new_routes = foreign[:slot] + [r for r in kept if is_ours(r)] + missing + foreign[slot:]
        method = "PATCH" if "routes" in server else "POST"
        await self._call(method, self._routes_path, json=new_routes)
        return ReconcileResult(added=len(missing), updated=updated, removed=removed, moved=moved)

    # --- plumbing ----------------------------------------------------------------------

    async def _upsert(self, route: dict[str, Any]) -> None:
        response = await self._call("PATCH", f"/id/{route['@id']}", json=route, allow=(404,))
        if response.status_code != 404:
            return
        # Not there yet: insert after the operator's routes, before the first catch-all.
        # (An index fails on an empty route list, "index out of bounds", and on a missing
        # server; appending works on a list that has no catch-all.)
        server = await self._get(self._server_path)
        current = server.get("routes") if isinstance(server, dict) else None
        if isinstance(current, list) and current:
            slot = tenant_slot(current)
            if slot < len(current):
                response = await self._call(
                    "PUT", f"{self._routes_path}/{slot}", json=route, allow=(400, 500)
                )
            else:
                response = await self._call("POST", self._routes_path, json=route, allow=(400, 500))
            if response.is_success:
                return
            raise CaddyError(
                f"Caddy refused to insert route {route['@id']}: {_error_text(response)}",
                status=response.status_code,
            )
        if not isinstance(server, dict):
            await self._create_server([route, fallback_route()])
        else:
            method = "PATCH" if "routes" in server else "POST"
            await self._call(method, self._routes_path, json=[route, fallback_route()])

    async def _create_server(self, routes: list[dict[str, Any]]) -> None:
        """Create the http server, and whichever of `apps`/`http`/`servers` is missing."""
        log.warning(
            "Caddy has no http server %r: creating it", self.server, extra={"listen": self._listen}
        )
        config = await self._get("/config/")
        levels = ["apps", "http", "servers", self.server]
        node: Any = config
        depth = 0  # how many of apps/http/servers exist as objects
        while depth < 3 and isinstance(node, dict) and isinstance(node.get(levels[depth]), dict):
            node = node[levels[depth]]
            depth += 1
        # POST at the first missing level, wrapping the server in the levels below it.
        document: Any = self.server_document(routes)
        for level in reversed(levels[depth + 1 :]):
            document = {level: document}
        path = "/config/" + "/".join(levels[: depth + 1])
        if config is None:  # no config at all: /config/apps cannot be traversed
            path, document = "/config/", {"apps": document}
        await self._call("POST", path, json=document)

    async def _get(self, path: str) -> Any:
        """The config value at `path`; None when it (or a parent of it) does not exist."""
        # Caddy answers a path under a missing parent with 400 "invalid traversal path".
        response = await self._call("GET", path, allow=(400, 404))
        if response.status_code in (400, 404):
            return None
        return response.json()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        allow: tuple[int, ...] = (),
    ) -> httpx.Response:
        url = f"{self._admin}{path}"
        # Idempotent calls get a second try: under load Caddy's admin server now and then
        # closes a connection before it answers (a ReadError), while applying a config.
        attempts = 2 if method in _IDEMPOTENT else 1
        for attempt in range(1, attempts + 1):
            try:
                # A new connection per call: Caddy drops idle admin connections when its
                # config is reloaded, and a kept-alive one would then fail with a read error.
                response = await self._http.request(
                    method, url, json=json, headers={"Connection": "close"}
                )
                break
            except httpx.HTTPError as exc:
                if isinstance(exc, httpx.TransportError) and attempt < attempts:
                    log.info(
                        "Caddy admin call failed; trying once more",
                        extra={"method": method, "path": path, "error": repr(exc)},
                    )
                    continue
                raise CaddyError(
                    f"Caddy admin API at {self._admin} is unreachable ({method} {path}): "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
        if response.is_success or response.status_code in allow:
            return response
        raise CaddyError(
            f"Caddy admin API refused {method} {path}: {response.status_code} "
            f"{_error_text(response)}",
            status=response.status_code,
        )


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict) and "error" in body:
        return str(body["error"])[:300]
    return response.text[:300]
