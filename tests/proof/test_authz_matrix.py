"""The authorisation matrix: every route of the app x every kind of caller, each cell checked.

Routes are enumerated from `app.routes`, so a route added without a row here fails
`test_every_route_has_a_row`. Each row says what each principal gets:

    anon      no credentials
    expired   user A's access token, expired an hour ago (validly signed)
    tampered  user A's access token with `sub` changed to B (signature kept)
    session   an admin dashboard session cookie, without the CSRF token
    admin     the admin API token
    b         user B, who must never see or touch A's tenants: 404, never 403
    a         user A, the owner (runs last in each row, as the owner may change things)

Where an allowed caller would change shared state, the row asks for something that is
refused after the authorisation check (a 422 body, a 409 state, a 404 id), so every cell
still proves the door opened or stayed shut; rows that change a tenant get a fresh one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from starlette.routing import Mount

from tests.proof.conftest import World

ORDER = ("anon", "expired", "tampered", "session", "b", "admin", "a")


def everyone(code: int) -> dict[str, int]:
    return dict.fromkeys(ORDER, code)


def admin_only(ok: int) -> dict[str, int]:
    return {**everyone(401), "a": 403, "b": 403, "admin": ok}


def users(a: int, b: int | None = None) -> dict[str, int]:
    return {**everyone(401), "a": a, "b": a if b is None else b}


def page(ok: int = 200) -> dict[str, int]:
    """A dashboard page: only the session's cookie opens it (no CSRF needed to read)."""
    return {**everyone(401), "session": ok}


def form() -> dict[str, int]:
    """A dashboard change: 401 without a session, 403 with one but without the CSRF token."""
    return {**everyone(401), "session": 403}


@dataclass(frozen=True)
class Row:
    expect: dict[str, int]
    path: dict[str, str] = field(default_factory=dict)  # parameter -> World.ids key or literal
    json: Any = None
    data: dict[str, str] | None = None
    query: dict[str, str] | None = None
    headers: dict[str, str] | None = None
    # A tenant made for this row only (user A's, in this status): the row may change it.
    fresh: str | None = None


TENANT_A = {"tenant_id": "tenant_a"}
MISSING = "=00000000-0000-4000-8000-000000000000"  # a well-formed id of nothing
BAD = {"name": 5}  # valid JSON, invalid body: 422 once past the authorisation check
ROWS: dict[tuple[str, str], Row] = {
    # -- public ----------------------------------------------------------------------------
    ("GET", "/openapi.json"): Row(everyone(200)),
    ("GET", "/docs"): Row(everyone(200)),
    ("GET", "/docs-assets/{path}"): Row(everyone(200), {"path": "=swagger-ui.css"}),
    ("GET", "/static/{path}"): Row(everyone(200), {"path": "=docs-init.js"}),
    ("GET", "/admin/static/{path}"): Row(everyone(200), {"path": "=admin.css"}),
    ("GET", "/healthz"): Row(everyone(200)),
    ("GET", "/.well-known/jwks.json"): Row(everyone(200)),
    ("GET", "/api/v1/caddy/ask"): Row(everyone(200), query={"domain": "alpha.localhost"}),
    ("POST", "/api/v1/sso/redeem"): Row(
        everyone(401), json={"token": "not-a-token", "audience": "alpha.localhost"}
    ),
    ("POST", "/api/v1/stripe/webhook"): Row(everyone(400), json={"id": "evt_1"}),
    ("GET", "/metrics"): Row(admin_only(200)),
    # -- accounts --------------------------------------------------------------------------
    ("GET", "/api/v1/auth/config"): Row(everyone(200)),
    ("POST", "/api/v1/auth/register"): Row(everyone(422), json={"email": "x", "password": "y"}),
    ("POST", "/api/v1/auth/login"): Row(
        everyone(401), json={"email": "ada@example.com", "password": "not-her-password"}
    ),
    ("POST", "/api/v1/auth/refresh"): Row(everyone(401), json={"refresh_token": "r" * 43}),
    ("POST", "/api/v1/auth/logout"): Row(everyone(204), json={"refresh_token": "r" * 43}),
    ("GET", "/api/v1/auth/me"): Row(users(200)),
    ("POST", "/api/v1/auth/verify-email"): Row(everyone(400), json={"token": "t" * 43}),
    ("POST", "/api/v1/auth/resend-verification"): Row(users(503)),  # no SMTP here
    ("POST", "/api/v1/auth/forgot-password"): Row(everyone(503), json={"email": "ada@example.com"}),
    ("POST", "/api/v1/auth/reset-password"): Row(
        everyone(400), json={"token": "t" * 43, "new_password": "amber-lantern-rivet-77"}
    ),
    ("POST", "/api/v1/auth/password"): Row(users(422), json={}),
    ("GET", "/api/v1/users"): Row(admin_only(200)),
    ("GET", "/api/v1/users/{user_id}"): Row(admin_only(200), {"user_id": "user_a"}),
    ("POST", "/api/v1/users/{user_id}/disable"): Row(admin_only(404), {"user_id": "missing"}),
    ("POST", "/api/v1/users/{user_id}/enable"): Row(admin_only(200), {"user_id": "user_a"}),
    # -- nodes, projects, tenants, orphans, audit (admin token) ------------------------------
    ("GET", "/api/v1/nodes"): Row(admin_only(200)),
    ("POST", "/api/v1/nodes"): Row(admin_only(422), json=BAD),
    ("GET", "/api/v1/nodes/{node_id}"): Row(admin_only(200), {"node_id": "node_id"}),
    ("PUT", "/api/v1/nodes/{node_id}"): Row(admin_only(422), {"node_id": "node_id"}, json=BAD),
    ("DELETE", "/api/v1/nodes/{node_id}"): Row(admin_only(409), {"node_id": "node_id"}),
    ("POST", "/api/v1/nodes/{node_id}/maintenance"): Row(
        admin_only(422), {"node_id": "node_id"}, json={"enabled": "yes"}
    ),
    ("GET", "/api/v1/projects"): Row(admin_only(200)),
    ("POST", "/api/v1/projects"): Row(admin_only(422), json=BAD),
    ("GET", "/api/v1/projects/{project_id}"): Row(admin_only(200), {"project_id": "project_id"}),
    ("PUT", "/api/v1/projects/{project_id}"): Row(
        admin_only(422), {"project_id": "project_id"}, json=BAD
    ),
    ("DELETE", "/api/v1/projects/{project_id}"): Row(admin_only(409), {"project_id": "project_id"}),
    ("GET", "/api/v1/projects/{project_id}/spares"): Row(
        admin_only(200), {"project_id": "project_id"}
    ),
    ("POST", "/api/v1/tenants"): Row(admin_only(422), json={"subdomain": 5}),
    ("GET", "/api/v1/tenants"): Row(admin_only(200)),
    ("GET", "/api/v1/tenants/{tenant_id}"): Row(admin_only(200), {"tenant_id": "tenant_a"}),
    ("PUT", "/api/v1/tenants/{tenant_id}"): Row(
        admin_only(422), {"tenant_id": "tenant_a"}, json={"ram_mb": "lots"}
    ),
    ("DELETE", "/api/v1/tenants/{tenant_id}"): Row(admin_only(404), {"tenant_id": "missing"}),
    ("POST", "/api/v1/tenants/{tenant_id}/suspend"): Row(
        admin_only(409), {"tenant_id": "tenant_busy"}
    ),
    ("POST", "/api/v1/tenants/{tenant_id}/resume"): Row(
        admin_only(409), {"tenant_id": "tenant_busy"}
    ),
    ("POST", "/api/v1/tenants/{tenant_id}/retry"): Row(
        admin_only(409), {"tenant_id": "tenant_busy"}
    ),
    ("GET", "/api/v1/tenants/{tenant_id}/metrics"): Row(admin_only(200), {"tenant_id": "tenant_a"}),
    ("GET", "/api/v1/nodes/{node_id}/metrics"): Row(admin_only(200), {"node_id": "node_id"}),
    ("GET", "/api/v1/orphans"): Row(admin_only(200)),
    ("DELETE", "/api/v1/orphans/{node_id}/{vmid}"): Row(
        admin_only(404), {"node_id": "node_id", "vmid": "=99999"}
    ),
    ("GET", "/api/v1/audit"): Row(admin_only(200)),
    ("GET", "/api/v1/settings"): Row(admin_only(200)),
    ("GET", "/api/v1/capacity"): Row(admin_only(200)),
    ("PUT", "/api/v1/settings"): Row(admin_only(422), json={"ram_overcommit": "lots"}),
    # -- webhooks (admin token); a missing endpoint past the door is a 404 ------------------
    ("GET", "/api/v1/webhooks"): Row(admin_only(200)),
    ("POST", "/api/v1/webhooks"): Row(admin_only(422), json=BAD),
    ("GET", "/api/v1/webhooks/event-types"): Row(admin_only(200)),
    ("GET", "/api/v1/webhooks/{webhook_id}"): Row(admin_only(404), {"webhook_id": MISSING}),
    ("PUT", "/api/v1/webhooks/{webhook_id}"): Row(
        admin_only(422), {"webhook_id": MISSING}, json=BAD
    ),
    ("DELETE", "/api/v1/webhooks/{webhook_id}"): Row(admin_only(404), {"webhook_id": MISSING}),
    ("GET", "/api/v1/webhooks/{webhook_id}/deliveries"): Row(
        admin_only(404), {"webhook_id": MISSING}
    ),
    ("GET", "/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}"): Row(
        admin_only(404), {"webhook_id": MISSING, "delivery_id": "=1"}
    ),
    ("POST", "/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"): Row(
        admin_only(404), {"webhook_id": MISSING, "delivery_id": "=1"}
    ),
    # -- a user's own tenants: B gets 404 for A's, never 403 ---------------------------------
    ("GET", "/api/v1/user/tenants"): Row(users(200)),
    ("POST", "/api/v1/user/tenants"): Row(users(422), json={"subdomain": 5}),
    ("GET", "/api/v1/user/tenants/{tenant_id}"): Row(users(200, 404), {"tenant_id": "tenant_a"}),
    ("DELETE", "/api/v1/user/tenants/{tenant_id}"): Row(users(202, 404), fresh="active"),
    ("POST", "/api/v1/user/tenants/{tenant_id}/suspend"): Row(users(202, 404), fresh="active"),
    ("POST", "/api/v1/user/tenants/{tenant_id}/resume"): Row(users(202, 404), fresh="suspended"),
    ("POST", "/api/v1/user/tenants/{tenant_id}/retry"): Row(
        users(409, 404), {"tenant_id": "tenant_a"}
    ),
    ("GET", "/api/v1/user/tenants/{tenant_id}/metrics"): Row(
        users(200, 404), {"tenant_id": "tenant_a"}
    ),
    ("GET", "/api/v1/user/projects"): Row(users(200)),
    # -- the lifecycle (operations) ---------------------------------------------------------
    ("GET", "/api/v1/operations/{operation_id}"): Row(admin_only(404), {"operation_id": "missing"}),
    ("GET", "/api/v1/tenants/{tenant_id}/operations"): Row(admin_only(200), TENANT_A),
    ("GET", "/api/v1/tenants/{tenant_id}/snapshots"): Row(admin_only(200), TENANT_A),
    ("GET", "/api/v1/tenants/{tenant_id}/backups"): Row(admin_only(200), TENANT_A),
    ("GET", "/api/v1/tenants/{tenant_id}/backup-schedule"): Row(admin_only(200), TENANT_A),
    ("POST", "/api/v1/tenants/{tenant_id}/snapshots"): Row(
        admin_only(422), {"tenant_id": "tenant_busy"}, json=BAD
    ),
    ("DELETE", "/api/v1/tenants/{tenant_id}/snapshots/{name}"): Row(
        admin_only(404), {**TENANT_A, "name": "=nothere"}
    ),
    ("POST", "/api/v1/tenants/{tenant_id}/snapshots/{name}/rollback"): Row(
        admin_only(404), {**TENANT_A, "name": "=nothere"}
    ),
    ("POST", "/api/v1/tenants/{tenant_id}/backups"): Row(
        admin_only(409), {"tenant_id": "tenant_busy"}
    ),
    ("DELETE", "/api/v1/tenants/{tenant_id}/backups/{backup_id}"): Row(
        admin_only(404), {**TENANT_A, "backup_id": "missing"}
    ),
    ("POST", "/api/v1/tenants/{tenant_id}/backups/{backup_id}/restore"): Row(
        admin_only(422), {**TENANT_A, "backup_id": "missing"}, json=BAD
    ),
    ("PUT", "/api/v1/tenants/{tenant_id}/backup-schedule"): Row(
        admin_only(422), TENANT_A, json=BAD
    ),
    ("DELETE", "/api/v1/tenants/{tenant_id}/backup-schedule"): Row(admin_only(204), TENANT_A),
    ("POST", "/api/v1/tenants/{tenant_id}/rebuild"): Row(admin_only(422), TENANT_A, json=BAD),
    ("POST", "/api/v1/tenants/{tenant_id}/resize"): Row(admin_only(422), TENANT_A, json=BAD),
    ("POST", "/api/v1/tenants/{tenant_id}/restart"): Row(
        admin_only(409), {"tenant_id": "tenant_busy"}
    ),
    ("POST", "/api/v1/tenants/{tenant_id}/move"): Row(admin_only(422), TENANT_A, json=BAD),
    ("POST", "/api/v1/nodes/{node_id}/repin"): Row(
        admin_only(409), {"node_id": "node_id"}, json={"fingerprint": ":".join(["AB"] * 32)}
    ),
    ("POST", "/api/v1/tenants/{tenant_id}/repair"): Row(
        admin_only(409), {"tenant_id": "tenant_busy"}
    ),
    ("POST", "/api/v1/nodes/{node_id}/drain"): Row(
        admin_only(422), {"node_id": "node_id"}, json=BAD
    ),
    ("GET", "/api/v1/nodes/{node_id}/drain"): Row(admin_only(404), {"node_id": "node_id"}),
    ("POST", "/api/v1/nodes/{node_id}/drain/cancel"): Row(admin_only(404), {"node_id": "node_id"}),
    ("GET", "/api/v1/user/operations/{operation_id}"): Row(users(404), {"operation_id": "missing"}),
    ("GET", "/api/v1/user/tenants/{tenant_id}/operations"): Row(users(200, 404), TENANT_A),
    ("GET", "/api/v1/user/tenants/{tenant_id}/snapshots"): Row(users(200, 404), TENANT_A),
    ("GET", "/api/v1/user/tenants/{tenant_id}/backups"): Row(users(200, 404), TENANT_A),
    ("GET", "/api/v1/user/tenants/{tenant_id}/backup-schedule"): Row(users(200, 404), TENANT_A),
    ("POST", "/api/v1/user/tenants/{tenant_id}/snapshots"): Row(
        users(202, 404), json={"name": "first"}, fresh="active"
    ),
    ("DELETE", "/api/v1/user/tenants/{tenant_id}/snapshots/{name}"): Row(
        users(404), {**TENANT_A, "name": "=nothere"}
    ),
    ("POST", "/api/v1/user/tenants/{tenant_id}/snapshots/{name}/rollback"): Row(
        users(404), {**TENANT_A, "name": "=nothere"}
    ),
    ("POST", "/api/v1/user/tenants/{tenant_id}/backups"): Row(users(202, 404), fresh="active"),
    ("DELETE", "/api/v1/user/tenants/{tenant_id}/backups/{backup_id}"): Row(
        users(404), {**TENANT_A, "backup_id": "missing"}
    ),
    ("POST", "/api/v1/user/tenants/{tenant_id}/backups/{backup_id}/restore"): Row(
        users(404), {**TENANT_A, "backup_id": "missing"}, json={"confirm": "alpha"}
    ),
    ("PUT", "/api/v1/user/tenants/{tenant_id}/backup-schedule"): Row(
        users(200, 404), json={"frequency": "daily", "at": "03:00"}, fresh="active"
    ),
    ("DELETE", "/api/v1/user/tenants/{tenant_id}/backup-schedule"): Row(users(204, 404), TENANT_A),
    ("POST", "/api/v1/user/tenants/{tenant_id}/rebuild"): Row(
        users(422, 404), TENANT_A, json={"confirm": "not-the-subdomain"}
    ),
    ("POST", "/api/v1/user/tenants/{tenant_id}/resize"): Row(
        users(202, 404), json={"cores": 2}, fresh="active"
    ),
    ("POST", "/api/v1/user/tenants/{tenant_id}/restart"): Row(users(202, 404), fresh="active"),
    # Live streams: an invalid Last-Event-ID is the 422 past the door (a 200 never ends).
    ("GET", "/api/v1/user/events"): Row(users(422), headers={"Last-Event-ID": "x"}),
    ("GET", "/api/v1/events"): Row(admin_only(422), headers={"Last-Event-ID": "x"}),
    ("POST", "/api/v1/user/tenants/{tenant_id}/sso-token"): Row(
        users(200, 404), {"tenant_id": "tenant_a"}
    ),
    # -- console and app management: the proof node has no SSH, so the owner and the admin
    # get past the door to the 409 "no SSH access" (or the 409/404 of the project's app)
    ("POST", "/api/v1/user/tenants/{tenant_id}/console"): Row(
        users(409, 404), {"tenant_id": "tenant_a"}
    ),
    ("POST", "/api/v1/tenants/{tenant_id}/console"): Row(
        admin_only(409), {"tenant_id": "tenant_a"}
    ),
    ("GET", "/api/v1/user/tenants/{tenant_id}/app"): Row(
        users(200, 404), {"tenant_id": "tenant_a"}
    ),
    ("POST", "/api/v1/user/tenants/{tenant_id}/app/restart"): Row(
        users(409, 404), {"tenant_id": "tenant_a"}
    ),
    ("GET", "/api/v1/user/tenants/{tenant_id}/app/logs"): Row(
        users(409, 404), {"tenant_id": "tenant_a"}
    ),
    ("POST", "/api/v1/user/tenants/{tenant_id}/app/actions/{name}"): Row(
        users(404, 404), {"tenant_id": "tenant_a", "name": "=deploy"}
    ),
    ("GET", "/api/v1/tenants/{tenant_id}/app"): Row(admin_only(200), {"tenant_id": "tenant_a"}),
    ("POST", "/api/v1/tenants/{tenant_id}/app/restart"): Row(
        admin_only(409), {"tenant_id": "tenant_a"}
    ),
    ("GET", "/api/v1/tenants/{tenant_id}/app/logs"): Row(
        admin_only(409), {"tenant_id": "tenant_a"}
    ),
    ("POST", "/api/v1/tenants/{tenant_id}/app/actions/{name}"): Row(
        admin_only(404), {"tenant_id": "tenant_a", "name": "=deploy"}
    ),
    # -- billing (on, against the Stripe stand-in) -------------------------------------------
    ("POST", "/api/v1/billing/checkout"): Row(users(200), json={"tier": "basic"}),
    ("POST", "/api/v1/billing/portal"): Row(users(200)),
    ("GET", "/api/v1/billing/status"): Row(users(200)),
    # -- WireGuard peers (admin token) ---------------------------------------------------------
    ("GET", "/api/v1/wireguard/peers"): Row(admin_only(200)),
    ("POST", "/api/v1/wireguard/peers"): Row(admin_only(422), json=BAD),
    ("GET", "/api/v1/wireguard/peers/{peer_id}"): Row(admin_only(200), {"peer_id": "peer_id"}),
    ("PUT", "/api/v1/wireguard/peers/{peer_id}"): Row(
        admin_only(422), {"peer_id": "peer_id"}, json=BAD
    ),
    ("DELETE", "/api/v1/wireguard/peers/{peer_id}"): Row(admin_only(404), {"peer_id": "missing"}),
    ("POST", "/api/v1/wireguard/peers/{peer_id}/enable"): Row(
        admin_only(200), {"peer_id": "peer_id"}
    ),
    ("POST", "/api/v1/wireguard/peers/{peer_id}/disable"): Row(
        admin_only(404), {"peer_id": "missing"}
    ),
    ("GET", "/api/v1/wireguard/peers/{peer_id}/config"): Row(
        admin_only(200), {"peer_id": "peer_id"}
    ),
    ("GET", "/api/v1/wireguard/peers/{peer_id}/qr"): Row(admin_only(200), {"peer_id": "peer_id"}),
    # -- the admin dashboard: its session cookie only, and CSRF on every change ---------------
    ("GET", "/admin"): Row(page()),
    ("GET", "/admin/login"): Row({**everyone(200), "session": 303}),
    ("POST", "/admin/setup/options"): Row(everyone(403), json={}),
    ("POST", "/admin/setup/verify"): Row(everyone(403), json={}),
    ("POST", "/admin/login/options"): Row(everyone(403), json={}),
    ("POST", "/admin/login/verify"): Row(everyone(403), json={}),
    ("POST", "/admin/logout"): Row(form()),
    ("GET", "/admin/passkeys"): Row(page()),
    ("POST", "/admin/passkeys/options"): Row(form(), json={"passkey_name": "k"}),
    ("POST", "/admin/passkeys/verify"): Row(form(), json={}),
    ("POST", "/admin/passkeys/{passkey_id}/rename"): Row(
        form(), {"passkey_id": "passkey_id"}, data={"name": "renamed"}
    ),
    ("POST", "/admin/passkeys/{passkey_id}/delete"): Row(form(), {"passkey_id": "passkey_id"}),
    ("GET", "/admin/nodes"): Row(page()),
    ("GET", "/admin/nodes/new"): Row(page()),
    ("POST", "/admin/nodes"): Row(form(), data={"name": "n2"}),
    ("GET", "/admin/nodes/{node_id}/edit"): Row(page(), {"node_id": "node_id"}),
    ("GET", "/admin/nodes/{node_id}"): Row(page(), {"node_id": "node_id"}),
    ("POST", "/admin/nodes/{node_id}"): Row(form(), {"node_id": "node_id"}, data={"name": "x"}),
    ("POST", "/admin/nodes/{node_id}/delete"): Row(form(), {"node_id": "node_id"}),
    ("GET", "/admin/projects"): Row(page()),
    ("GET", "/admin/projects/new"): Row(page()),
    ("POST", "/admin/projects"): Row(form(), data={"name": "p2"}),
    ("GET", "/admin/projects/{project_id}/edit"): Row(page(), {"project_id": "project_id"}),
    ("POST", "/admin/projects/{project_id}"): Row(
        form(), {"project_id": "project_id"}, data={"name": "x"}
    ),
    ("POST", "/admin/projects/{project_id}/default"): Row(form(), {"project_id": "project_id"}),
    ("POST", "/admin/projects/{project_id}/delete"): Row(form(), {"project_id": "project_id"}),
    ("GET", "/admin/tenants"): Row(page()),
    ("GET", "/admin/tenants/new"): Row(page()),
    ("POST", "/admin/tenants"): Row(form(), data={"subdomain": "t2"}),
    ("GET", "/admin/tenants/{tenant_id}"): Row(page(), {"tenant_id": "tenant_a"}),
    ("POST", "/admin/tenants/{tenant_id}/{action}"): Row(
        form(), {"tenant_id": "tenant_a", "action": "=suspend"}
    ),
    ("POST", "/admin/tenants/{tenant_id}/console/ticket"): Row(form(), {"tenant_id": "tenant_a"}),
    ("GET", "/admin/tenants/{tenant_id}/app"): Row(page(), {"tenant_id": "tenant_a"}),
    ("GET", "/admin/tenants/{tenant_id}/app/logs"): Row(page(409), {"tenant_id": "tenant_a"}),
    ("POST", "/admin/tenants/{tenant_id}/app/restart"): Row(form(), {"tenant_id": "tenant_a"}),
    ("POST", "/admin/tenants/{tenant_id}/app/actions/{name}"): Row(
        form(), {"tenant_id": "tenant_a", "name": "=deploy"}
    ),
    ("GET", "/admin/tenants/{tenant_id}/lifecycle"): Row(page(), {"tenant_id": "tenant_a"}),
    ("GET", "/admin/nodes/{node_id}/fleet"): Row(page(), {"node_id": "node_id"}),
    ("POST", "/admin/nodes/{node_id}/maintenance"): Row(
        form(), {"node_id": "node_id"}, data={"enabled": "false"}
    ),
    ("POST", "/admin/nodes/{node_id}/drain"): Row(
        form(), {"node_id": "node_id"}, data={"max_parallel": "0"}
    ),
    ("POST", "/admin/nodes/{node_id}/drain/cancel"): Row(form(), {"node_id": "node_id"}),
    ("POST", "/admin/nodes/{node_id}/repin"): Row(
        form(), {"node_id": "node_id"}, data={"fingerprint": "zz"}
    ),
    ("POST", "/admin/tenants/{tenant_id}/snapshots"): Row(
        form(), {"tenant_id": "tenant_a"}, data={"snap_name": "dash"}
    ),
    ("POST", "/admin/tenants/{tenant_id}/snapshots/{name}/{action}"): Row(
        form(), {"tenant_id": "tenant_a", "name": "=nothere", "action": "=delete"}
    ),
    ("POST", "/admin/tenants/{tenant_id}/backups"): Row(form(), {"tenant_id": "tenant_a"}),
    ("POST", "/admin/tenants/{tenant_id}/backups/{backup_id}/delete"): Row(
        form(), {"tenant_id": "tenant_a", "backup_id": "missing"}
    ),
    ("POST", "/admin/tenants/{tenant_id}/restore"): Row(
        form(), {"tenant_id": "tenant_a"}, data={"restore_confirm": "alpha"}
    ),
    ("POST", "/admin/tenants/{tenant_id}/backup-schedule"): Row(
        form(), {"tenant_id": "tenant_a"}, data={"frequency": "daily", "at": "03:00"}
    ),
    ("POST", "/admin/tenants/{tenant_id}/backup-schedule/delete"): Row(
        form(), {"tenant_id": "tenant_a"}
    ),
    ("POST", "/admin/tenants/{tenant_id}/rebuild"): Row(
        form(), {"tenant_id": "tenant_a"}, data={"rebuild_confirm": "alpha"}
    ),
    ("POST", "/admin/tenants/{tenant_id}/resize"): Row(
        form(), {"tenant_id": "tenant_a"}, data={"cores": "2"}
    ),
    ("POST", "/admin/tenants/{tenant_id}/restart"): Row(form(), {"tenant_id": "tenant_a"}),
    ("GET", "/admin/audit"): Row(page()),
    ("GET", "/admin/settings"): Row(page()),
    ("POST", "/admin/settings"): Row(form(), data={"ram_overcommit": "3"}),
    ("GET", "/admin/network"): Row(page()),
    ("POST", "/admin/network/peers"): Row(form(), data={"name": "p"}),
    ("GET", "/admin/network/peers/{peer_id}"): Row(page(), {"peer_id": "peer_id"}),
    ("POST", "/admin/network/peers/{peer_id}"): Row(
        form(), {"peer_id": "peer_id"}, data={"name": "x"}
    ),
    ("POST", "/admin/network/peers/{peer_id}/{action}"): Row(
        form(), {"peer_id": "peer_id", "action": "=disable"}
    ),
    ("GET", "/admin/network/peers/{peer_id}/config"): Row(page(), {"peer_id": "peer_id"}),
    ("GET", "/admin/network/peers/{peer_id}/qr"): Row(page(), {"peer_id": "peer_id"}),
    ("GET", "/admin/events"): Row(page(422), headers={"Last-Event-ID": "x"}),
    ("GET", "/admin/users"): Row(page()),
    ("POST", "/admin/users/{user_id}/{action}"): Row(
        form(), {"user_id": "user_a", "action": "=enable"}
    ),
    ("GET", "/admin/orphans"): Row(page()),
    ("POST", "/admin/orphans/{node_id}/{vmid}/delete"): Row(
        form(), {"node_id": "node_id", "vmid": "=99999"}
    ),
    ("GET", "/admin/capacity"): Row(page()),
    ("GET", "/admin/webhooks"): Row(page()),
    ("POST", "/admin/webhooks"): Row(form(), data={"url": "x"}),
    ("GET", "/admin/webhooks/{webhook_id}"): Row(page(404), {"webhook_id": MISSING}),
    ("POST", "/admin/webhooks/{webhook_id}/{action}"): Row(
        form(), {"webhook_id": MISSING, "action": "=disable"}
    ),
    ("POST", "/admin/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"): Row(
        form(), {"webhook_id": MISSING, "delivery_id": "=1"}
    ),
    # -- last: it ends every session of B, then of A ----------------------------------------
    ("POST", "/api/v1/auth/logout-all"): Row(users(204)),
}


def app_routes(app: Any) -> set[tuple[str, str]]:
    """(method, path template) of everything the app serves; mounts serve GET /{path}."""
    found: set[tuple[str, str]] = set()
    for rc in iter_route_contexts(app.routes):
        if isinstance(rc.original_route, Mount):
            found.add(("GET", rc.path.rstrip("/") + "/{path}"))
            continue
        for method in rc.methods or ():
            if method != "HEAD":  # answered by the GET route
                found.add((method, rc.path))
    return found


def test_every_route_has_a_row(app: Any) -> None:
    missing = sorted(app_routes(app) - set(ROWS))
    assert not missing, f"routes without a row in the authorisation matrix: {missing}"


async def _fill(world: World, row: Row, template: str) -> str:
    values = dict(row.path)
    if row.fresh is not None:
        stamp = f"f{time.monotonic_ns() % 10**12}"
        values["tenant_id"] = "=" + await world.user_tenant("a", stamp, row.fresh)
    path = template
    for name, source in values.items():
        value = source[1:] if source.startswith("=") else world.ids[source]
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, f"unfilled parameter in {path}"
    return path


async def test_every_cell(world: World) -> None:
    served = app_routes(world.app)
    wrong: list[str] = []
    cells = 0
    started = time.perf_counter()
    for (method, template), row in ROWS.items():
        if (method, template) not in served:
            continue  # a row for a route this tree does not have (yet)
        assert set(row.expect) == set(ORDER), (method, template)
        url = await _fill(world, row, template)
        for who in ORDER:
            r = await world.http.request(
                method,
                url,
                headers={**world.headers(who), **(row.headers or {})},
                json=row.json,
                data=row.data,
                params=row.query,
            )
            cells += 1
            want = row.expect[who]
            if r.status_code != want:
                wrong.append(f"{method} {template} as {who}: {r.status_code}, want {want}"
                             f" ({r.text[:120]!r})")  # fmt: skip
            elif r.status_code >= 400 and r.headers.get("content-type", "").startswith(
                "application/json"
            ):
                assert r.json()["error"]["status"] == want
    print(f"\n{cells} cells ({len(ROWS)} rows x {len(ORDER)} principals) "
          f"in {time.perf_counter() - started:.1f} s")  # fmt: skip
    assert not wrong, "\n".join(wrong)
    assert cells >= 95 * len(ORDER)


async def test_b_never_sees_a_tenant_of_a(world: World) -> None:
    a, b = world.headers("a"), world.headers("b")
    mine = (await world.http.get("/api/v1/user/tenants", headers=a)).json()
    theirs = (await world.http.get("/api/v1/user/tenants", headers=b)).json()
    assert [t["id"] for t in mine["items"]] == [world.ids["tenant_a"]]
    assert [t["id"] for t in theirs["items"]] == [world.ids["tenant_b"]]
    # B's 404 for A's tenant reads exactly like the 404 for a tenant that does not exist.
    tenant_a = world.ids["tenant_a"]
    for method, suffix in (
        ("GET", ""),
        ("POST", "/suspend"),
        ("POST", "/sso-token"),
        ("GET", "/metrics"),
    ):
        seen = await world.http.request(
            method, f"/api/v1/user/tenants/{tenant_a}{suffix}", headers=b
        )
        ghost = await world.http.request(
            method, f"/api/v1/user/tenants/{world.ids['missing']}{suffix}", headers=b
        )
        assert seen.status_code == ghost.status_code == 404
        assert seen.json()["error"]["message"].replace(tenant_a, "?") == ghost.json()["error"][
            "message"
        ].replace(world.ids["missing"], "?")
    row = await world.db.fetch_one(
        "SELECT status, suspended_by FROM tenants WHERE id = %(id)s", {"id": tenant_a}
    )
    assert row == {"status": "active", "suspended_by": None}


@pytest.mark.parametrize("who", ["expired", "tampered"])
async def test_rejected_tokens_say_why(world: World, who: str) -> None:
    r = await world.http.get("/api/v1/auth/me", headers=world.headers(who))
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    expected = "access token expired" if who == "expired" else "invalid access token"
    assert r.json()["error"]["message"] == expected
