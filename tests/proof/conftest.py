"""The proof suites' world: every integration switched on, two users, an admin session.

`world` is the app (real PostgreSQL, the Proxmox simulator, the Stripe stand-in,
WireGuard with an empty UAPI folder) holding a node, a project, users A and B with a
tenant each, a WireGuard peer, and a logged-in dashboard session, plus the credentials of
every principal the authorisation matrix checks.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from controlplane.auth.tokens import issue_access_token
from controlplane.config import Settings
from tests.admin.authenticator import SoftAuthenticator
from tests.admin.conftest import ORIGIN, SETUP_TOKEN, Browser, new_browser, register_first
from tests.auth.conftest import PASSWORD, bearer, user_settings
from tests.billing.conftest import SK, TIERS, WHSEC
from tests.billing.fakestripe import FakeStripe, serve
from tests.conftest import ADMIN_TOKEN, SimHandle
from tests.wireguard.conftest import ENDPOINT, HUB_PUBLIC

SESSION_COOKIE = "cp_admin_session"
# The billing suite's tiers, with room on the free one for the tenants made here.
PROOF_TIERS = [{**TIERS[0], "max_tenants": 100, "max_ram_mb": 65536}, *TIERS[1:]]


def proof_settings(database_url: str, uapi_dir: Path, stripe_url: str, **extra: Any) -> Settings:
    return user_settings(
        database_url,
        rate_limit_auth="100000/minute",
        rate_limit_api="100000/minute",
        setup_token=SETUP_TOKEN,
        admin_origin=ORIGIN,
        stripe_secret_key=SK,
        stripe_webhook_secret=WHSEC,
        stripe_api_base=stripe_url,
        wg_hub_public_key=HUB_PUBLIC,
        wg_endpoint=ENDPOINT,
        wg_interface="wgcp-none",  # no such interface: the syncer idles
        wg_uapi_dir=str(uapi_dir),
        # Background loops stay quiet, so a table changes only when a request changes it.
        node_poll_seconds=3600.0,
        reconcile_seconds=86400.0,
        wg_sync_seconds=86400.0,
        billing_sweep_seconds=86400.0,
        **extra,
    )


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripe]:
    fake = FakeStripe(api_key=SK, prices={"price_basic", "price_pro"})
    server = serve(fake)
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def settings(database_url: str, tmp_path: Path, fake_stripe: FakeStripe) -> Settings:
    return proof_settings(database_url, tmp_path, fake_stripe.url)


@dataclass
class Principal:
    name: str
    headers: dict[str, str] = field(default_factory=dict)
    id: str | None = None


@dataclass
class World:
    app: Any
    http: httpx.AsyncClient  # no credentials of its own: each request says who it is
    principals: dict[str, Principal]
    ids: dict[str, str]
    session: Browser  # the dashboard tab, with its CSRF token
    sim: SimHandle

    @property
    def db(self) -> Any:
        return self.app.state.cp.db

    def headers(self, who: str) -> dict[str, str]:
        return self.principals[who].headers

    async def user_tenant(self, who: str, subdomain: str, status: str = "active") -> str:
        """A tenant of user `who` in `status`, made through the API like a user would."""
        h = self.headers(who)
        r = await self.http.post("/api/v1/user/tenants", json={"subdomain": subdomain}, headers=h)
        assert r.status_code == 202, r.text
        tenant_id = r.json()["id"]
        await self.set_status(tenant_id, "active")
        if status == "suspended":  # suspended by its owner, so the owner may resume it
            r = await self.http.post(f"/api/v1/user/tenants/{tenant_id}/suspend", headers=h)
            assert r.status_code == 202, r.text
        if status != "active":
            await self.set_status(tenant_id, status)
        return str(tenant_id)

    async def set_status(self, tenant_id: str, status: str) -> None:
        """What the provisioner does when it finishes (not under test here)."""
        await self.db.execute(
            "UPDATE tenants SET status = %(s)s, step = NULL WHERE id = %(id)s",
            {"id": tenant_id, "s": status},
        )


def tamper(token: str, **claims: Any) -> str:
    """The token with its claims changed and the old signature kept."""
    head, payload, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data.update(claims)
    body = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{head}.{body}.{signature}"


async def _user(http: httpx.AsyncClient, email: str) -> tuple[dict[str, Any], dict[str, Any]]:
    r = await http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    user = r.json()
    r = await http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return user, r.json()


@pytest.fixture
async def world(app: Any, pve_sim: SimHandle) -> AsyncIterator[World]:
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as http,
        new_browser(app) as tab,
    ):
        admin = bearer(ADMIN_TOKEN)
        r = await http.post(
            "/api/v1/nodes", json=pve_sim.node_body("pve1", total_ram_mb=65536), headers=admin
        )
        assert r.status_code == 201, r.text
        node = r.json()
        await app.state.cp.db.execute(
            "UPDATE nodes SET status = 'online', templates = '{9000}' WHERE id = %(id)s",
            {"id": node["id"]},
        )
        project = {"name": "Web", "slug": "web", "template_vmid": 9000, "ram_mb": 512,
                   "self_service": True}  # fmt: skip
        r = await http.post("/api/v1/projects", json={**project, "is_default": True}, headers=admin)
        assert r.status_code == 201, r.text
        project_id = r.json()["id"]
        from controlplane.sysconfig import service as sysconfig
        from controlplane.sysconfig.schemas import SystemSettingsUpdate

        await sysconfig.update_settings(
            app.state.cp.db, SystemSettingsUpdate.model_validate({"billing_tiers": PROOF_TIERS})
        )

        user_a, tokens_a = await _user(http, "ada@example.com")
        user_b, tokens_b = await _user(http, "bob@example.com")
        version = await app.state.cp.db.fetch_val(
            "SELECT token_version FROM users WHERE id = %(id)s", {"id": user_a["id"]}
        )
        settings = app.state.cp.settings
        expired = issue_access_token(
            settings,
            user_id=uuid.UUID(user_a["id"]),
            version=version,
            now=datetime.now(UTC) - timedelta(hours=1),
        )
        tampered = tamper(tokens_a["access_token"], sub=user_b["id"])

        session = Browser(tab)
        r = await register_first(session, SoftAuthenticator(ORIGIN, "localhost"))
        assert r.status_code == 200, r.text
        assert (await session.open("/admin")).status_code == 200
        cookie = tab.cookies.get(SESSION_COOKIE)
        assert cookie
        passkey_id = await app.state.cp.db.fetch_val("SELECT id FROM admin_passkeys LIMIT 1")

        r = await http.post("/api/v1/wireguard/peers", json={"name": "laptop"}, headers=admin)
        assert r.status_code == 201, r.text
        peer_id = r.json()["id"]

        principals = {
            "anon": Principal("anon"),
            "expired": Principal("expired", bearer(expired)),
            "tampered": Principal("tampered", bearer(tampered)),
            # The dashboard cookie, sent everywhere (a browser would only send it to /admin),
            # and never the CSRF token.
            "session": Principal("session", {"Cookie": f"{SESSION_COOKIE}={cookie}"}),
            "admin": Principal("admin", admin),
            "a": Principal("a", bearer(tokens_a["access_token"]), user_a["id"]),
            "b": Principal("b", bearer(tokens_b["access_token"]), user_b["id"]),
        }
        w = World(app, http, principals, {}, session, pve_sim)
        w.ids.update(
            node_id=node["id"],
            project_id=project_id,
            user_a=user_a["id"],
            tenant_a=await w.user_tenant("a", "alpha"),
            tenant_b=await w.user_tenant("b", "bravo"),
            peer_id=peer_id,
            passkey_id=str(passkey_id),
            missing=str(uuid.uuid4()),
            refresh_a=tokens_a["refresh_token"],
        )
        r = await http.post(
            "/api/v1/tenants", json={"subdomain": "busy", "project_id": project_id}, headers=admin
        )
        assert r.status_code == 202, r.text
        w.ids["tenant_busy"] = r.json()["id"]  # provisioning, nobody's: actions are 409
        yield w
