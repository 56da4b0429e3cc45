"""Bad input against every POST/PUT route: oversized bodies, wrong content types, invalid
UTF-8, huge numbers, unicode look-alikes, SQL and header injection. Every answer is a 4xx,
never a 500, and the database is exactly as before (every table's rows, hashed).

Each route is called the way its legitimate caller calls it (admin token, user A's token,
the dashboard session with its CSRF token), so the bad input reaches validation rather than
stopping at the door. After the bad variants, the route's valid base body is sent once as a
control: it must succeed, which shows the variants failed for their badness alone.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts

from tests.admin.conftest import SETUP_TOKEN
from tests.auth.conftest import PASSWORD
from tests.proof.badinput import (
    HEADER_ATTACKS,
    PATH_ATTACKS,
    Variant,
    changed,
    checksum,
    form_variants,
    json_variants,
    spoiled_form,
)
from tests.proof.conftest import World

UNSAFE = ("POST", "PUT")
LIMIT = 1_048_576  # MAX_BODY_BYTES in the proof settings (the default)


@dataclass(frozen=True)
class Target:
    who: str  # "admin" | "a" | "session" | "anon"
    kind: str  # "json" | "form" | "none"
    path: dict[str, str] = field(default_factory=dict)  # parameter -> World.ids key, "=literal"
    base: dict[str, Any] | None = None  # a valid body; "{key}" values come from World.ids
    control: int | None = None  # what the valid base body gets (None: not sent)
    last: bool = False  # changes what later targets rely on: runs at the end
    answers: tuple[int, ...] = ()  # non-4xx answers that are right for this route
    free: tuple[str, ...] = ()  # form fields of free text (any printable text is valid)
    partial: bool = False  # an edit form: fields left out stay as they are
    audited: bool = False  # refusals are audited by design (failed logins)
    # Well-formed bodies (merged over `base`) that the rules refuse: 422 naming the field.
    refused: tuple[tuple[dict[str, Any], str], ...] = ()


NODE = {"name": "pve-two", "pve_node": "pve2", "verify_tls": False, "total_ram_mb": 4096,
        "token_id": "root@pam!controlplane", "token_secret": "5e0c7c0e-1b2a-4c3d-9e8f-0a1b2c3d4e5f",
        "api_url": "{sim_url}", "vmid_range_start": 20000, "vmid_range_end": 20999}  # fmt: skip
TENANT = {"tenant_id": "tenant_a"}
# The operator's names (built in, and the host of the proof's PUBLIC_URL/ADMIN_ORIGIN).
OPERATOR_NAMES = ("cp", "console", "portal", "autodiscover", "webmail", "admin")
CATCH_ALLS = tuple(
    ({"allowed_ips": [net]}, "allowed_ips") for net in ("0.0.0.0/0", "::/0", "128.0.0.0/1")
)
PEER = {"peer_id": "peer_id"}
TARGETS: dict[tuple[str, str], Target] = {
    ("POST", "/api/v1/nodes"): Target("admin", "json", base=NODE, control=201),
    ("PUT", "/api/v1/nodes/{node_id}"): Target(
        "admin", "json", {"node_id": "node_id"}, {"name": "pve-one"}, 200
    ),
    ("POST", "/api/v1/nodes/{node_id}/maintenance"): Target(
        "admin", "json", {"node_id": "node_id"}, {"enabled": False, "reason": "patching"}, 200
    ),
    ("POST", "/api/v1/projects"): Target(
        "admin",
        "json",
        base={"name": "Api", "slug": "api-two", "template_vmid": 9000},
        control=201,
    ),
    ("PUT", "/api/v1/projects/{project_id}"): Target(
        "admin",
        "json",
        {"project_id": "project_id"},
        {"name": "Web two", "ram_mb": 256},
        200,
        refused=(
            ({"warm_pool_size": -1}, "warm_pool_size"),
            ({"warm_pool_size": 21}, "warm_pool_size"),
        ),
    ),
    ("POST", "/api/v1/tenants"): Target(
        "admin",
        "json",
        base={"subdomain": "made-here", "name": "Made"},
        control=202,
        refused=tuple(({"subdomain": name}, "subdomain") for name in OPERATOR_NAMES),
    ),
    ("PUT", "/api/v1/tenants/{tenant_id}"): Target(
        "admin", "json", TENANT, {"name": "Alpha two", "cores": 2}, 200
    ),
    ("POST", "/api/v1/tenants/{tenant_id}/suspend"): Target("admin", "none", TENANT),
    ("POST", "/api/v1/tenants/{tenant_id}/resume"): Target("admin", "none", TENANT),
    ("POST", "/api/v1/tenants/{tenant_id}/retry"): Target("admin", "none", TENANT),
    ("POST", "/api/v1/users/{user_id}/disable"): Target("admin", "none", {"user_id": "user_a"}),
    ("POST", "/api/v1/users/{user_id}/enable"): Target("admin", "none", {"user_id": "user_a"}),
    ("POST", "/api/v1/auth/register"): Target(
        "anon", "json", base={"email": "new@example.com", "password": PASSWORD}, control=201
    ),
    ("POST", "/api/v1/auth/login"): Target(
        "anon",
        "json",
        base={"email": "ada@example.com", "password": PASSWORD},
        control=200,
        audited=True,
    ),
    ("POST", "/api/v1/auth/refresh"): Target(  # no token in the body: the cookie's, or 401
        "anon",
        "json",
        base={"refresh_token": "{refresh_a}"},
        control=200,
        last=True,
        answers=(401,),
    ),
    ("POST", "/api/v1/auth/logout"): Target(  # any token that is not one: "logged out"
        "anon", "json", base={"refresh_token": "r" * 43}, control=204, answers=(204,)
    ),
    ("POST", "/api/v1/auth/logout-all"): Target("a", "none", last=True),
    ("POST", "/api/v1/auth/verify-email"): Target("anon", "json", base={"token": "t" * 43}),
    ("POST", "/api/v1/auth/resend-verification"): Target("a", "none"),
    ("POST", "/api/v1/auth/forgot-password"): Target(  # no SMTP in the proof world: 503
        "anon", "json", base={"email": "ada@example.com"}, control=503, answers=(503,)
    ),
    ("POST", "/api/v1/auth/reset-password"): Target(
        "anon", "json", base={"token": "t" * 43, "new_password": "amber-lantern-rivet-77"}
    ),
    ("POST", "/api/v1/auth/password"): Target(
        "a",
        "json",
        base={"current_password": PASSWORD, "new_password": "amber-lantern-rivet-77"},
        control=200,
        last=True,
    ),
    ("POST", "/api/v1/user/tenants"): Target(
        "a",
        "json",
        base={"subdomain": "mine-too", "name": "Mine"},
        control=202,
        refused=tuple(({"subdomain": name}, "subdomain") for name in OPERATOR_NAMES),
    ),
    ("POST", "/api/v1/user/tenants/{tenant_id}/suspend"): Target("a", "none", TENANT),
    ("POST", "/api/v1/user/tenants/{tenant_id}/resume"): Target("a", "none", TENANT),
    ("POST", "/api/v1/user/tenants/{tenant_id}/retry"): Target("a", "none", TENANT),
    ("POST", "/api/v1/tenants/{tenant_id}/move"): Target(
        "admin", "json", TENANT, base={"node_id": "{missing}"}
    ),
    ("POST", "/api/v1/nodes/{node_id}/drain"): Target(
        "admin", "json", {"node_id": "missing"}, base={"max_parallel": 2}
    ),
    ("POST", "/api/v1/nodes/{node_id}/drain/cancel"): Target(
        "admin", "none", {"node_id": "missing"}
    ),
    ("POST", "/api/v1/nodes/{node_id}/repin"): Target(
        "admin", "json", {"node_id": "node_id"}, base={"fingerprint": ":".join(["AB"] * 32)}
    ),
    ("POST", "/api/v1/tenants/{tenant_id}/repair"): Target(
        "admin", "none", {"tenant_id": "missing"}
    ),
    ("POST", "/api/v1/tenants/{tenant_id}/snapshots"): Target(
        "admin", "json", TENANT, base={"name": "snap_admin"}
    ),
    ("POST", "/api/v1/tenants/{tenant_id}/snapshots/{name}/rollback"): Target(
        "admin", "none", {**TENANT, "name": "=nothere"}
    ),
    ("POST", "/api/v1/tenants/{tenant_id}/backups"): Target("admin", "none", TENANT),
    ("POST", "/api/v1/tenants/{tenant_id}/backups/{backup_id}/restore"): Target(
        "admin", "json", {**TENANT, "backup_id": "missing"}, base={"confirm": "alpha"}
    ),
    ("POST", "/api/v1/tenants/{tenant_id}/rebuild"): Target(
        "admin", "json", TENANT, base={"confirm": "not-alpha"}
    ),
    ("POST", "/api/v1/tenants/{tenant_id}/resize"): Target(
        "admin", "json", TENANT, base={"cores": 2}
    ),
    ("POST", "/api/v1/tenants/{tenant_id}/restart"): Target("admin", "none", TENANT),
    ("PUT", "/api/v1/tenants/{tenant_id}/backup-schedule"): Target(
        "admin", "json", TENANT, base={"frequency": "daily", "at": "03:00"}, control=200
    ),
    ("POST", "/api/v1/user/tenants/{tenant_id}/snapshots"): Target(
        "a", "json", TENANT, base={"name": "snap_a"}
    ),
    ("POST", "/api/v1/user/tenants/{tenant_id}/snapshots/{name}/rollback"): Target(
        "a", "none", {**TENANT, "name": "=nothere"}
    ),
    ("POST", "/api/v1/user/tenants/{tenant_id}/backups"): Target("a", "none", TENANT),
    ("POST", "/api/v1/user/tenants/{tenant_id}/backups/{backup_id}/restore"): Target(
        "a", "json", {**TENANT, "backup_id": "missing"}, base={"confirm": "alpha"}
    ),
    ("POST", "/api/v1/user/tenants/{tenant_id}/rebuild"): Target(
        "a", "json", TENANT, base={"confirm": "not-alpha"}
    ),
    ("POST", "/api/v1/user/tenants/{tenant_id}/resize"): Target(
        "a", "json", TENANT, base={"cores": 2}
    ),
    ("POST", "/api/v1/user/tenants/{tenant_id}/restart"): Target("a", "none", TENANT),
    ("PUT", "/api/v1/user/tenants/{tenant_id}/backup-schedule"): Target(
        "a", "json", TENANT, base={"frequency": "daily", "at": "03:00"}, control=200
    ),
    ("POST", "/api/v1/user/tenants/{tenant_id}/sso-token"): Target("a", "none", TENANT),
    ("POST", "/api/v1/user/tenants/{tenant_id}/console"): Target("a", "none", TENANT),
    ("POST", "/api/v1/tenants/{tenant_id}/console"): Target("admin", "none", TENANT),
    ("POST", "/api/v1/user/tenants/{tenant_id}/app/restart"): Target("a", "none", TENANT),
    ("POST", "/api/v1/tenants/{tenant_id}/app/restart"): Target("admin", "none", TENANT),
    ("POST", "/api/v1/user/tenants/{tenant_id}/app/actions/{name}"): Target(
        "a", "json", {**TENANT, "name": "=deploy"}, {"confirm": True}
    ),
    ("POST", "/api/v1/tenants/{tenant_id}/app/actions/{name}"): Target(
        "admin", "json", {**TENANT, "name": "=deploy"}, {"confirm": True}
    ),
    ("POST", "/api/v1/sso/redeem"): Target(
        "anon", "json", base={"token": "{sso_token}", "audience": "alpha.localhost"}, control=200
    ),
    ("POST", "/api/v1/stripe/webhook"): Target("anon", "json", base={"id": "evt_1"}),
    ("POST", "/api/v1/billing/checkout"): Target("a", "json", base={"tier": "basic"}, control=200),
    ("POST", "/api/v1/billing/portal"): Target("a", "none"),
    ("POST", "/api/v1/wireguard/peers"): Target(
        "admin", "json", base={"name": "phone"}, control=201, refused=CATCH_ALLS
    ),
    ("PUT", "/api/v1/wireguard/peers/{peer_id}"): Target(
        "admin", "json", PEER, {"name": "laptop-two", "notes": "desk"}, 200, refused=CATCH_ALLS
    ),
    ("POST", "/api/v1/wireguard/peers/{peer_id}/enable"): Target("admin", "none", PEER),
    ("POST", "/api/v1/wireguard/peers/{peer_id}/disable"): Target("admin", "none", PEER),
    ("PUT", "/api/v1/settings"): Target(
        "admin", "json", base={"default_project": None}, control=200, last=True
    ),
    # A webhook made by the control runs last, subscribed to an event the suite never raises,
    # so no delivery attempt writes to the database behind a later target's checksum.
    ("POST", "/api/v1/webhooks"): Target(
        "admin",
        "json",
        base={"url": "https://hooks.example.com/cp", "events": ["billing.subscription_updated"]},
        control=201,
        last=True,
    ),
    ("PUT", "/api/v1/webhooks/{webhook_id}"): Target(
        "admin",
        "json",
        {"webhook_id": "=00000000-0000-4000-8000-000000000000"},
        {"description": "ops"},
    ),
    ("POST", "/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"): Target(
        "admin",
        "none",
        {"webhook_id": "=00000000-0000-4000-8000-000000000000", "delivery_id": "=1"},
    ),
    # -- the dashboard (session cookie + CSRF token) ------------------------------------------
    ("POST", "/admin/setup/options"): Target(
        "session",
        "json",
        base={"setup_token": SETUP_TOKEN, "admin_name": "eve", "passkey_name": "key"},
    ),
    ("POST", "/admin/setup/verify"): Target(
        "session", "json", base={"ticket": "t" * 20, "credential": {}}
    ),
    ("POST", "/admin/login/options"): Target("session", "none"),
    ("POST", "/admin/login/verify"): Target(
        "session", "json", base={"ticket": "t" * 20, "credential": {}}
    ),
    ("POST", "/admin/logout"): Target("session", "none"),
    ("POST", "/admin/passkeys/options"): Target(
        "session", "json", base={"passkey_name": "spare"}, control=200
    ),
    ("POST", "/admin/passkeys/verify"): Target(
        "session", "json", base={"ticket": "t" * 20, "credential": {}}
    ),
    ("POST", "/admin/passkeys/{passkey_id}/rename"): Target(
        "session", "form", {"passkey_id": "passkey_id"}, {"name": "renamed"}, 303, free=("name",)
    ),
    ("POST", "/admin/passkeys/{passkey_id}/delete"): Target(
        "session", "none", {"passkey_id": "passkey_id"}
    ),
    ("POST", "/admin/nodes"): Target(
        "session",
        "form",
        base={  # verify_tls left out (a checkbox: any value or none is valid)
            **{k: v for k, v in NODE.items() if k != "verify_tls"},
            "name": "pve-three",
            "pve_node": "pve2",
            "vmid_range_start": 21000,
            "vmid_range_end": 21999,
        },
        control=303,
    ),
    ("POST", "/admin/nodes/{node_id}"): Target(
        "session", "form", {"node_id": "node_id"}, {"name": "pve-uno"}, 303, partial=True
    ),
    ("POST", "/admin/nodes/{node_id}/delete"): Target("session", "none", {"node_id": "node_id"}),
    ("POST", "/admin/projects"): Target(
        "session",
        "form",
        base={"name": "Dash", "slug": "dash", "template_vmid": 9000},
        control=303,
        free=("name",),
    ),
    ("POST", "/admin/projects/{project_id}"): Target(
        "session",
        "form",
        {"project_id": "project_id"},
        {"name": "Web three", "is_default": "on"},  # the form always sends its checkbox
        303,
        free=("name", "is_default"),  # a checkbox: any value means checked or not
        partial=True,
    ),
    ("POST", "/admin/projects/{project_id}/default"): Target(
        "session", "none", {"project_id": "project_id"}
    ),
    ("POST", "/admin/projects/{project_id}/delete"): Target(
        "session", "none", {"project_id": "project_id"}
    ),
    ("POST", "/admin/tenants"): Target(
        "session",
        "form",
        base={"subdomain": "dash-made", "name": "Dash"},
        control=303,
        free=("name",),
    ),
    ("POST", "/admin/tenants/{tenant_id}/{action}"): Target(
        "session", "none", {**TENANT, "action": "=suspend"}
    ),
    ("POST", "/admin/tenants/{tenant_id}/console/ticket"): Target("session", "none", TENANT),
    ("POST", "/admin/tenants/{tenant_id}/app/restart"): Target("session", "none", TENANT),
    ("POST", "/admin/tenants/{tenant_id}/app/actions/{name}"): Target(
        "session", "none", {**TENANT, "name": "=deploy"}
    ),
    ("POST", "/admin/tenants/{tenant_id}/snapshots"): Target(
        "session", "form", TENANT, {"snap_name": "snap_dash"}
    ),
    ("POST", "/admin/tenants/{tenant_id}/snapshots/{name}/{action}"): Target(
        "session", "none", {**TENANT, "name": "=nothere", "action": "=rollback"}
    ),
    ("POST", "/admin/tenants/{tenant_id}/backups"): Target("session", "none", TENANT),
    ("POST", "/admin/nodes/{node_id}/maintenance"): Target(
        "session", "form", {"node_id": "missing"}, {"enabled": "true", "reason": "kernel"}
    ),
    ("POST", "/admin/nodes/{node_id}/drain"): Target(
        "session", "form", {"node_id": "missing"}, {"max_parallel": "2"}
    ),
    ("POST", "/admin/nodes/{node_id}/drain/cancel"): Target(
        "session", "none", {"node_id": "missing"}
    ),
    ("POST", "/admin/nodes/{node_id}/repin"): Target(
        "session", "form", {"node_id": "missing"}, {"fingerprint": ":".join(["AB"] * 32)}
    ),
    ("POST", "/admin/tenants/{tenant_id}/backups/{backup_id}/delete"): Target(
        "session", "none", {**TENANT, "backup_id": "missing"}
    ),
    ("POST", "/admin/tenants/{tenant_id}/restore"): Target(
        "session", "form", TENANT, {"backup_id": "{missing}", "restore_confirm": "alpha"}
    ),
    ("POST", "/admin/tenants/{tenant_id}/backup-schedule"): Target(
        "session", "form", TENANT, {"frequency": "daily", "at": "03:00"}, control=303
    ),
    ("POST", "/admin/tenants/{tenant_id}/backup-schedule/delete"): Target(
        "session", "none", TENANT
    ),
    ("POST", "/admin/tenants/{tenant_id}/rebuild"): Target(
        "session", "form", TENANT, {"rebuild_confirm": "not-alpha"}
    ),
    ("POST", "/admin/tenants/{tenant_id}/resize"): Target(
        "session", "form", TENANT, {"cores": "2"}
    ),
    ("POST", "/admin/tenants/{tenant_id}/restart"): Target("session", "none", TENANT),
    ("POST", "/admin/settings"): Target(
        "session", "form", base={"ram_overcommit": "1.5"}, control=303, partial=True
    ),
    ("POST", "/admin/users/{user_id}/{action}"): Target(
        "session", "none", {"user_id": "user_a", "action": "=enable"}
    ),
    ("POST", "/admin/orphans/{node_id}/{vmid}/delete"): Target(
        "session", "none", {"node_id": "node_id", "vmid": "=99999"}
    ),
    ("POST", "/admin/webhooks"): Target(  # as the API's: subscribed to what is never raised
        "session",
        "form",
        base={"url": "https://hooks.example.com/dash", "events": "billing.subscription_updated"},
        control=201,
        last=True,
        free=("description",),
    ),
    ("POST", "/admin/webhooks/{webhook_id}/{action}"): Target(
        "session",
        "none",
        {"webhook_id": "=00000000-0000-4000-8000-000000000000", "action": "=disable"},
    ),
    ("POST", "/admin/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"): Target(
        "session",
        "none",
        {"webhook_id": "=00000000-0000-4000-8000-000000000000", "delivery_id": "=1"},
    ),
    ("POST", "/admin/network/peers"): Target(
        "session", "form", base={"name": "tablet"}, control=303, free=("name",)
    ),
    ("POST", "/admin/network/peers/{peer_id}"): Target(
        "session", "form", PEER, {"name": "laptop-three"}, 303, free=("name",), partial=True
    ),
    ("POST", "/admin/network/peers/{peer_id}/{action}"): Target(
        "session", "none", {**PEER, "action": "=disable"}
    ),
}


def unsafe_routes(app: Any) -> set[tuple[str, str]]:
    return {
        (method, rc.path)
        for rc in iter_route_contexts(app.routes)
        for method in (rc.methods or ())
        if method in UNSAFE
    }


def test_every_post_and_put_route_has_a_target(app: Any) -> None:
    missing = sorted(unsafe_routes(app) - set(TARGETS))
    assert not missing, f"POST/PUT routes the bad-input suite does not cover: {missing}"


async def settle(world: World) -> None:
    """Until every audit entry is written: the queue empty, and no batch the writer took
    still on its way (the row count holds still)."""
    audit, last = world.app.state.cp.audit, -1
    while True:
        await audit.flush()
        await asyncio.sleep(0.02)
        count = await world.db.fetch_val("SELECT count(*) FROM audit_log")
        if count == last and audit.depth == 0:
            return
        last = count


def _value(world: World, source: str) -> str:
    return source[1:] if source.startswith("=") else world.ids[source]


def _url(world: World, template: str, path: dict[str, str]) -> str:
    url = template
    for name, source in path.items():
        url = url.replace("{" + name + "}", _value(world, source))
    return url


def _base(world: World, target: Target) -> dict[str, Any] | None:
    if target.base is None:
        return None
    filled: dict[str, Any] = {}
    for key, value in target.base.items():
        if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
            value = world.ids[value[1:-1]]
        filled[key] = value
    return filled


def _auth(world: World, who: str) -> dict[str, str]:
    if who == "session":
        return {"X-CSRF-Token": world.session.csrf}
    return {} if who == "anon" else world.headers(who)


def _client(world: World, who: str) -> Any:
    # The dashboard tab carries the session cookie; everyone else uses the bare client.
    return world.session.http if who == "session" else world.http


def _body_schema(app: Any, method: str, template: str) -> dict[str, Any]:
    spec = app.openapi()
    operation = spec["paths"].get(template, {}).get(method.lower(), {})
    content = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    schema = content.get("schema", {})
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return dict(schema.get("properties", {}))


@dataclass
class Tally:
    requests: int = 0
    routes: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


async def _send(world: World, target: Target, method: str, url: str, v: Variant) -> Any:
    headers = {**_auth(world, target.who), **(v.headers or {})}
    content = v.content
    if v.json is not None:  # ASCII-escaped, so lone surrogates travel as \ud800
        content = json.dumps(v.json).encode()
        headers.setdefault("Content-Type", "application/json")
    return await _client(world, target.who).request(
        method, url, headers=headers, content=content, data=v.data
    )


def _check(tally: Tally, label: str, r: Any, *, allow: tuple[int, ...] = ()) -> None:
    tally.requests += 1
    tally.statuses[r.status_code] = tally.statuses.get(r.status_code, 0) + 1
    refused = 400 <= r.status_code < 500 and r.status_code not in (401, 403)
    if not (refused or r.status_code in allow):
        tally.problems.append(f"{label}: {r.status_code} {r.text[:300]!r}")
    injected = {k.lower() for k in r.headers} & {"x-injected", "hx-redirect"}
    if injected or "pwned" in r.headers.get("set-cookie", ""):
        tally.problems.append(f"{label}: header injected into the answer: {dict(r.headers)}")


def _ordered(app: Any) -> list[tuple[tuple[str, str], Target]]:
    served = unsafe_routes(app)
    items = [(key, t) for key, t in TARGETS.items() if key in served]
    return sorted(items, key=lambda item: item[1].last)


@pytest.fixture
async def prepared(world: World) -> AsyncIterator[World]:
    """The world plus what some base bodies need: the simulator's URL, an SSO token of A."""
    world.ids["sim_url"] = world.sim.url
    r = await world.http.post(
        f"/api/v1/user/tenants/{world.ids['tenant_a']}/sso-token", headers=world.headers("a")
    )
    assert r.status_code == 200, r.text
    world.ids["sso_token"] = r.json()["token"]
    yield world


async def test_bad_bodies_are_refused_and_change_nothing(prepared: World) -> None:
    world = prepared
    tally = Tally()
    started = time.perf_counter()
    for (method, template), target in _ordered(world.app):
        tally.routes += 1
        url = _url(world, template, target.path)
        base = _base(world, target)
        if target.kind == "json":
            assert base is not None
            variants = list(json_variants(base, _body_schema(world.app, method, template)))
        elif target.kind == "form":
            assert base is not None
            variants = list(
                form_variants(
                    {k: str(v) for k, v in base.items()},
                    free=target.free,
                    partial=target.partial,
                )
            )
        else:
            variants = []
        await settle(world)
        before = await checksum(world.db)
        for v in variants:
            r = await _send(world, target, method, url, v)
            _check(tally, f"{method} {template} [{v.name}]", r, allow=target.answers)
        for case, named in target.refused:
            assert base is not None
            r = await _send(world, target, method, url, Variant("refused", json=base | case))
            tally.requests += 1
            fields = [f.get("field") for f in r.json().get("error", {}).get("fields", [])]
            if r.status_code != 422 or named not in fields:
                tally.problems.append(
                    f"{method} {template} {case}: want 422 naming {named}, got "
                    f"{r.status_code} {r.text[:300]!r}"
                )
        for attack in HEADER_ATTACKS:  # with a body that is refused anyway
            spoiled = Variant("broken", content=b"{", headers={"Content-Type": "application/json"})
            if target.kind == "form":
                assert base is not None
                spoiled = Variant(
                    "too long",
                    content=spoiled_form({k: str(v) for k, v in base.items()}),
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                )
            if target.kind == "none":
                spoiled = Variant("too big", content=b"x" * (LIMIT + 1))
            headers = {**(spoiled.headers or {}), **attack}
            r = await _send(world, target, method, url, Variant(spoiled.name, spoiled.content,
                                                                 spoiled.json, None, headers))  # fmt: skip
            # A hostile Cookie, Origin or CSRF header is refused at the door: 401/403 are right.
            label = f"{method} {template} [header {next(iter(attack))}]"
            _check(tally, label, r, allow=(401, 403))
        await settle(world)
        after = await checksum(world.db)
        if target.audited:
            before.pop("audit_log"), after.pop("audit_log")
        if diff := changed(before, after):
            tally.problems.append(f"{method} {template}: bad input changed the database: {diff}")
        if target.control is not None:
            assert base is not None
            if target.kind == "form":
                r = await _send(world, target, method, url, Variant("base", data=base))
            else:
                r = await _send(world, target, method, url, Variant("base", json=base))
            if r.status_code != target.control:
                tally.problems.append(
                    f"{method} {template}: the valid base body got {r.status_code}, want "
                    f"{target.control} ({r.text[:300]!r})"
                )
            await settle(world)  # its audit entry lands before the next checksum
    took = time.perf_counter() - started
    print(f"\n{tally.requests} bad requests to {tally.routes} POST/PUT routes in {took:.1f} s;"
          f" statuses {json.dumps(dict(sorted(tally.statuses.items())))}")  # fmt: skip
    assert not tally.problems, "\n".join(tally.problems[:200])
    assert tally.routes >= 50


async def test_oversized_bodies_are_413_everywhere(world: World) -> None:
    """Announced by Content-Length or streamed without one, on every POST/PUT route."""
    tally = Tally()
    await settle(world)
    before = await checksum(world.db)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"x" * 65_536  # 1.25 MiB in all, no Content-Length

    for (method, template), target in _ordered(world.app):
        url = _url(world, template, target.path)
        client, auth = _client(world, target.who), _auth(world, target.who)
        content_type = {"Content-Type": "application/json"}
        if target.kind == "form":
            content_type = {"Content-Type": "application/x-www-form-urlencoded"}
        big = json.dumps({"name": "x" * (LIMIT + 10)}).encode()
        r = await client.request(method, url, content=big, headers={**auth, **content_type})
        _check(tally, f"{method} {template} [Content-Length]", r)
        assert r.status_code == 413, (method, template, r.status_code)
        if target.kind == "none":
            continue  # see test_streamed_oversized_body_to_a_route_that_reads_none
        r = await client.request(method, url, content=chunks(), headers={**auth, **content_type})
        _check(tally, f"{method} {template} [chunked]", r)
        assert r.status_code == 413, (method, template, r.status_code)
    await settle(world)
    assert not changed(before, await checksum(world.db))
    assert not tally.problems, "\n".join(tally.problems)


async def test_streamed_oversized_body_to_a_route_that_reads_none(world: World) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"x" * 65_536

    await settle(world)
    before = await checksum(world.db)
    r = await world.http.post(
        f"/api/v1/user/tenants/{world.ids['tenant_a']}/suspend",
        content=chunks(),
        headers=world.headers("a"),
    )
    assert r.status_code == 413, r.status_code
    assert not changed(before, await checksum(world.db))


async def test_hostile_path_parameters(world: World) -> None:
    """Every route with a path parameter (any method), each parameter spoiled in turn."""
    tally = Tally()
    await settle(world)
    before = await checksum(world.db)
    for rc in iter_route_contexts(world.app.routes):
        names = [n[1:-1].split(":")[0] for n in rc.path.split("/") if n.startswith("{")]
        if not names or rc.path.endswith("{path}") or not rc.methods:
            continue
        for method in sorted(set(rc.methods) - {"HEAD"}):
            target = TARGETS.get((method, rc.path))
            who = target.who if target else ("session" if rc.path.startswith("/admin") else "admin")
            if rc.path.startswith("/api/v1/user/"):
                who = "a"
            for spoil in names:
                for label, bad in PATH_ATTACKS.items():
                    url = rc.path
                    for name in names:
                        value = bad if name == spoil else _default(world, name)
                        url = url.replace("{" + name + "}", value)
                    r = await _client(world, who).request(method, url, headers=_auth(world, who))
                    _check(tally, f"{method} {rc.path} [{spoil}={label}]", r, allow=(405,))
    await settle(world)
    assert not changed(before, await checksum(world.db))
    print(f"\n{tally.requests} requests with hostile path parameters")
    assert not tally.problems, "\n".join(tally.problems[:60])


def _default(world: World, name: str) -> str:
    if name == "action":
        return "suspend"
    if name == "vmid":
        return "99999"
    if name == "user_id":
        return world.ids["user_a"]
    if name == "tenant_id":
        return world.ids["tenant_a"]
    return world.ids.get(name, world.ids["missing"])


async def test_free_text_keeps_injection_strings_verbatim(world: World) -> None:
    """Where text is free (a tenant's name), SQL and look-alikes are stored as typed,
    parameters all the way down, and every table is still there."""
    names = ["x'; DROP TABLE tenants; --", "' OR '1'='1", "Robert'); DELETE FROM users;--",
             "\u0430cme \u202eevil \U0001f4a5", "%s %(id)s {id} $1"]  # fmt: skip
    tables = await world.db.fetch_val("SELECT count(*) FROM pg_tables WHERE schemaname='public'")
    for i, name in enumerate(names):
        r = await world.http.post(
            "/api/v1/tenants",
            json={"subdomain": f"verbatim{i}", "name": name},
            headers=world.headers("admin"),
        )
        assert r.status_code == 202, r.text
        assert r.json()["name"] == name
        stored = await world.db.fetch_val(
            "SELECT name FROM tenants WHERE id = %(id)s", {"id": r.json()["id"]}
        )
        assert stored == name
    after = await world.db.fetch_val("SELECT count(*) FROM pg_tables WHERE schemaname='public'")
    assert after == tables
    users = await world.db.fetch_val("SELECT count(*) FROM users")
    assert users == 2
