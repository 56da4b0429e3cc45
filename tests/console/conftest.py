"""The console and app suites: the app under uvicorn on loopback (WebSockets need a real
server), a simulated cluster whose node `pve1` has the simulator's SSH endpoint, a user
with one active tenant whose container runs in the simulator."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from controlplane.pvesim.models import Container
from controlplane.pvesim.ssh import SimSshServer, start_ssh_server
from controlplane.sshexec import KeyPair, generate_keypair
from tests.auth.conftest import CHEAP_ARGON2, GENEROUS_LIMITS, PASSWORD, bearer
from tests.conftest import ADMIN_TOKEN, SimHandle, make_settings, start_sim


@dataclass
class Plane:
    base: str  # http://127.0.0.1:PORT
    app: Any
    sim: SimHandle
    ssh: SimSshServer
    node: dict[str, Any]
    admin: httpx.AsyncClient
    http: httpx.AsyncClient  # anonymous

    @property
    def ws_base(self) -> str:
        return self.base.replace("http://", "ws://")

    @property
    def db(self) -> Any:
        return self.app.state.cp.db

    async def user(self, email: str) -> dict[str, Any]:
        """A registered user with an access token and a client sending it."""
        r = await self.http.post(
            "/api/v1/auth/register", json={"email": email, "password": PASSWORD}
        )
        assert r.status_code == 201, r.text
        r = await self.http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        token = r.json()["access_token"]
        me = await self.http.get("/api/v1/auth/me", headers=bearer(token))
        client = httpx.AsyncClient(base_url=self.base, headers=bearer(token), timeout=30)
        return {"id": me.json()["id"], "token": token, "client": client}

    async def active_tenant(self, user: dict[str, Any], subdomain: str) -> dict[str, Any]:
        """A tenant of `user`, active, whose container runs on pve1 in the simulator."""
        r = await user["client"].post("/api/v1/user/tenants", json={"subdomain": subdomain})
        assert r.status_code == 202, r.text
        tenant_id = r.json()["id"]
        row = await self.db.fetch_one(
            "UPDATE tenants SET status = 'active', step = NULL WHERE id = %(id)s RETURNING *",
            {"id": tenant_id},
        )
        sim = self.sim.sim
        ct = Container(
            vmid=row["vmid"],
            node="pve1",
            config={"hostname": subdomain, "ostype": "debian", "memory": 512, "cores": 1},
        )
        sim.containers[row["vmid"]] = ct  # type: ignore[attr-defined]
        await sim.container_started(ct)  # type: ignore[attr-defined]
        return dict(row)


@pytest.fixture(scope="session")
def node_keys() -> KeyPair:
    return generate_keypair()


@pytest.fixture
def console_settings() -> dict[str, Any]:
    """Overrides a test may change before `plane` starts."""
    return {}


@pytest.fixture
async def plane(
    database_url: str, node_keys: KeyPair, console_settings: dict[str, Any]
) -> AsyncIterator[Plane]:
    import uvicorn

    from controlplane.app import create_app
    from controlplane.web.server import uvicorn_config

    sim, sim_server = await start_sim(guest_units=("app.service", "myapp.service"))
    ssh = await start_ssh_server(sim.sim, authorized_key=node_keys.public_openssh, node="pve1")  # type: ignore[arg-type]
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # "localhost" where a browser needs a host name (WebAuthn refuses IP addresses)
    extra = dict(console_settings)
    host = extra.pop("host", "127.0.0.1")
    base = f"http://{host}:{port}"
    if host != "127.0.0.1":
        extra.setdefault("admin_origin", base)
    settings = make_settings(database_url, **{**CHEAP_ARGON2, **GENEROUS_LIMITS, **extra})
    app = create_app(settings)
    server = uvicorn.Server(uvicorn_config(app, host="127.0.0.1", port=port))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    admin = httpx.AsyncClient(base_url=base, headers=bearer(ADMIN_TOKEN), timeout=30)
    anonymous = httpx.AsyncClient(base_url=base, timeout=30)
    try:
        for _ in range(500):
            if server.started or task.done():
                break
            await asyncio.sleep(0.02)
        if task.done():
            task.result()
        assert server.started, "uvicorn did not start"
        body = sim.node_body(
            "pve1",
            total_ram_mb=16384,
            ssh_host=ssh.host,
            ssh_port=ssh.port,
            ssh_private_key=node_keys.private_pem,
            ssh_host_key=ssh.host_public_key,
        )
        r = await admin.post("/api/v1/nodes", json=body)
        assert r.status_code == 201, r.text
        node = r.json()
        await app.state.cp.db.execute(
            "UPDATE nodes SET status = 'online', templates = '{9000,9001}' WHERE id = %(id)s",
            {"id": node["id"]},
        )
        project = {
            "name": "Web",
            "slug": "web",
            "template_vmid": 9000,
            "ram_mb": 512,
            "self_service": True,
            "is_default": True,
            "app_service": "myapp.service",
            "app_actions": [
                {"name": "migrate", "command": "echo migrated", "confirm": True},
                {"name": "fail", "command": "echo nope; exit 3", "confirm": False},
            ],
        }
        r = await admin.post("/api/v1/projects", json=project)
        assert r.status_code == 201, r.text
        yield Plane(base, app, sim, ssh, node, admin, anonymous)
    finally:
        await admin.aclose()
        await anonymous.aclose()
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=15)
        sock.close()
        await ssh.close()
        await sim_server.close()  # type: ignore[attr-defined]
