"""`controlplane demo`: the whole system on one laptop, with no configuration.

Embedded PostgreSQL, a simulated Proxmox cluster of two nodes (served over real HTTP on
loopback, each running container reachable on its own 127.x address), both nodes registered
through the real API, a default project open to users, the workers, and the API with its
docs. Mail (verification, password reset) goes to a local SMTP sink that writes each
message under var/mail/ and prints its links; the containers' app answers `/sso?token=`
by verifying the token against the control plane's JWKS.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from pydantic import SecretStr

from controlplane.app import create_app
from controlplane.config import Settings
from controlplane.portal.site import find_build
from controlplane.web.server import ConnectionLimits, uvicorn_config

log = logging.getLogger(__name__)

# The simulator's loopback addresses for the demo's VMIDs (10000-29999): 127.100.x.y.
DEMO_TENANT_NETWORK = "127.100.0.0/16"
DEMO_TOKEN_ID = "root@pam!controlplane-demo"  # noqa: S105 - an id, not a secret


async def start_demo_cluster(
    *, nodes: tuple[str, ...] = ("pve1", "pve2"), secret: str
) -> tuple[Any, Any]:
    from controlplane.pvesim.app import create_app as create_sim_app
    from controlplane.pvesim.auth import Token
    from controlplane.pvesim.server import HttpServer
    from controlplane.pvesim.simulator import Simulator

    sim = Simulator(
        nodes,
        tokens=[Token(DEMO_TOKEN_ID, secret, None)],
        loopback_ips=True,
        task_durations={"vzclone": 1.0, "vzstart": 0.5, "vzstop": 0.3, "vzdestroy": 0.5},
    )
    server = await HttpServer(create_sim_app(sim)).start("127.0.0.1", 0)
    return sim, server


async def start_demo_ssh(sim: Any, nodes: tuple[str, ...]) -> tuple[Any, list[Any]]:
    """One simulated SSH endpoint per node, for the project's bootstrap commands."""
    from controlplane.pvesim.ssh import start_ssh_server
    from controlplane.sshexec import generate_keypair

    keys = generate_keypair("controlplane-demo")
    servers = [
        await start_ssh_server(sim, authorized_key=keys.public_openssh, node=name) for name in nodes
    ]
    return keys, servers


async def seed(
    api: httpx.AsyncClient,
    sim_url: str,
    secret: str,
    nodes: tuple[str, ...],
    keys: Any,
    ssh_servers: list[Any],
) -> None:
    """Register the simulated nodes and a default project through the API (idempotent)."""
    existing = {n["name"] for n in (await api.get("/api/v1/nodes")).json()["items"]}
    for index, (name, ssh) in enumerate(zip(nodes, ssh_servers, strict=True)):
        # The simulator's URL changes each run: replace a node left from a previous demo.
        body = {
            "name": name,
            "api_url": sim_url,
            "pve_node": name,
            "token_id": DEMO_TOKEN_ID,
            "token_secret": secret,
            "verify_tls": False,
            "vmid_range_start": 10000 + index * 10000,
            "vmid_range_end": 19999 + index * 10000,
            "ssh_host": ssh.host,
            "ssh_port": ssh.port,
            "ssh_private_key": keys.private_pem,
            "ssh_host_key": ssh.host_public_key,
        }
        if name in existing:
            node = next(
                n for n in (await api.get("/api/v1/nodes")).json()["items"] if n["name"] == name
            )
            # The SSH endpoints are new each run too (port and host key).
            keep = ("api_url", "token_id", "token_secret", "ssh_host", "ssh_port",
                    "ssh_private_key", "ssh_host_key")  # fmt: skip
            changes = {k: v for k, v in body.items() if k in keep}
            r = await api.put(f"/api/v1/nodes/{node['id']}", json=changes)
        else:
            r = await api.post("/api/v1/nodes", json=body)
        r.raise_for_status()
    projects = (await api.get("/api/v1/projects")).json()["items"]
    if not any(p["slug"] == "demo" for p in projects):
        r = await api.post(
            "/api/v1/projects",
            json={
                "name": "Demo app",
                "slug": "demo",
                "template_vmid": 9000,
                "ram_mb": 512,
                "cores": 1,
                "disk_gb": 8,
                "app_port": 8080,
                "health_path": "/",
                "bootstrap_commands": ["echo 'Welcome to your tenant' > /etc/motd"],
                "is_default": True,
                "self_service": True,
                **DEMO_APP,
            },
        )
        r.raise_for_status()
    else:  # a demo database from before projects had to be opened to users, or had apps
        demo = next(p for p in projects if p["slug"] == "demo")
        missing: dict[str, Any] = {} if demo.get("self_service") else {"self_service": True}
        if not demo.get("app_service"):
            missing |= DEMO_APP
        if missing:
            r = await api.put(f"/api/v1/projects/{demo['id']}", json=missing)
            r.raise_for_status()


# The simulated containers run `app.service`: the portal's app panel has something to show.
DEMO_APP: dict[str, Any] = {
    "app_service": "app.service",
    "app_actions": [
        {"name": "whoami", "command": "hostname && whoami", "confirm": False},
        {"name": "migrate", "command": "echo migrations applied", "confirm": True},
    ],
}


async def _keep_saving(sim: Any, path: Path, every: float = 2.0) -> None:
    """Save the simulated cluster now and then, so even a killed demo loses little."""
    while True:
        await asyncio.sleep(every)
        try:
            sim.save(path)  # in the loop: the state must not change under the copy
        except Exception:  # a full disk must not stop the demo
            log.exception("could not save the simulator's state")


def _free_port(preferred: int) -> int:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))  # plain bind: fails while anyone holds it
        except OSError:
            sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _launch_caddy(workdir: Path) -> tuple[subprocess.Popen[bytes], int, int] | None:
    caddy = shutil.which("caddy")
    if caddy is None:
        return None
    admin_port, http_port = _free_port(2019), _free_port(8081)
    workdir.mkdir(parents=True, exist_ok=True)
    boot = {
        "admin": {"listen": f"127.0.0.1:{admin_port}", "config": {"persist": False}},
        "apps": {
            "http": {
                "servers": {
                    "edge": {
                        "listen": [f"127.0.0.1:{http_port}"],
                        "automatic_https": {"disable": True},
                        "routes": [
                            {
                                "@id": "fallback",
                                "handle": [
                                    {
                                        "handler": "static_response",
                                        "status_code": 404,
                                        "body": "unknown host",
                                    }
                                ],
                            }
                        ],
                    }
                }
            }
        },
    }
    (workdir / "caddy.json").write_text(json.dumps(boot))
    env = {
        **os.environ,
        "XDG_DATA_HOME": str(workdir / "data"),
        "XDG_CONFIG_HOME": str(workdir / "cfg"),
    }
    proc = subprocess.Popen(  # noqa: S603 - the caddy on PATH, fixed arguments
        [caddy, "run", "--config", str(workdir / "caddy.json")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "caddy.log").open("wb"),
    )
    return proc, admin_port, http_port


async def start_demo_caddy(workdir: Path) -> tuple[subprocess.Popen[bytes], int, int] | None:
    """A local Caddy (when installed) so tenants answer at http://{subdomain}.localhost:PORT."""
    launched = await asyncio.to_thread(_launch_caddy, workdir)
    if launched is None:
        return None
    async with httpx.AsyncClient() as client:
        for _ in range(100):
            try:
                await client.get(f"http://127.0.0.1:{launched[1]}/config/")
                return launched
            except httpx.HTTPError:
                await asyncio.sleep(0.05)
    launched[0].terminate()
    return None


async def run_demo(
    settings: Settings,
    *,
    database_url: str,
    host: str,
    port: int,
    stop: asyncio.Event | None = None,
) -> None:
    """Run until `stop` is set (SIGINT/SIGTERM); then shut everything down, Caddy included."""
    assert settings.api_token is not None
    token = settings.api_token.get_secret_value()
    stop = stop or asyncio.Event()
    caddy = None
    if not settings.caddy_admin_url:
        caddy = await start_demo_caddy(Path(settings.embedded_pg_dir).parent / "caddy")
        if caddy is not None:
            settings = settings.model_copy(
                update={
                    "caddy_admin_url": f"http://127.0.0.1:{caddy[1]}",
                    "caddy_listen": [f"127.0.0.1:{caddy[2]}"],
                    "caddy_automatic_https": False,
                    "caddy_reconcile_seconds": 5.0,
                }
            )
    if DEMO_TENANT_NETWORK not in settings.tenant_networks:
        # The simulated containers live on loopback: a range the operator lists explicitly.
        settings = settings.model_copy(
            update={"tenant_networks": [*settings.tenant_networks, DEMO_TENANT_NETWORK]}
        )
    var = Path(settings.embedded_pg_dir).parent
    sink = None
    if not settings.smtp_url:
        from controlplane.mail.sink import MailSink

        sink = MailSink(var / "mail")
        await sink.start()
        settings = settings.model_copy(
            update={
                "smtp_url": SecretStr(f"smtp://127.0.0.1:{sink.port}?starttls=off"),
                "mail_from": settings.mail_from or "Control plane demo <noreply@localhost>",
            }
        )
    secret = settings.encryption_key_bytes.hex()[:36]  # stable across runs, never shown
    nodes = ("pve1", "pve2")
    sim, sim_server = await start_demo_cluster(nodes=nodes, secret=secret)
    # The simulated cluster outlives the demo: containers, configs and addresses come back.
    sim_state = var / "pvesim.json"
    restored = await sim.load(sim_state)
    saver = asyncio.create_task(_keep_saving(sim, sim_state))
    from controlplane.pvesim.guestapps import SsoCheck

    sim.guest_apps.sso = SsoCheck(
        jwks_url=f"http://127.0.0.1:{port}/.well-known/jwks.json",
        issuer=settings.public_url,
        base_domain=settings.base_domain,
    )
    keys, ssh_servers = await start_demo_ssh(sim, nodes)
    app = create_app(settings, database_url=database_url)
    server = uvicorn.Server(
        uvicorn_config(app, host=host, port=port, limits=ConnectionLimits.from_settings(settings))
    )
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if serving.done():
                # uvicorn has logged why (port taken, ...); it exits through SystemExit.
                with contextlib.suppress(SystemExit):
                    await serving
                print(f"controlplane demo: could not serve on {host}:{port}; see the log above")
                return
            await asyncio.sleep(0.05)
        base = f"http://{host}:{port}"
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {token}"}
        ) as api:
            await seed(api, sim_server.url, secret, nodes, keys, ssh_servers)
        local = f"http://localhost:{port}" if host in ("127.0.0.1", "localhost") else base
        print(
            "\n".join(
                [
                    "",
                    "controlplane demo is running",
                    f"  API:        {local}/api/v1",
                    f"  API docs:   {local}/docs",
                    f"  dashboard:  {local}/admin",
                    (
                        f"  customer portal: {local}/ (sign up there)"
                        if find_build(settings.portal_dir)
                        else "  customer portal: not built (install Node.js and npm, then"
                        " make portal)"
                    ),
                    f"  admin token: {token}",
                    (
                        "  dashboard setup token (first passkey): SETUP_TOKEN in .env"
                        if settings.setup_token
                        else "  dashboard setup token: set SETUP_TOKEN (make run writes it to .env)"
                    ),
                    (
                        f"  mail: caught by a local SMTP sink, saved in {var / 'mail'}"
                        " and printed here"
                        if sink
                        else "  mail: sent through SMTP_URL"
                    ),
                    f"  Proxmox simulator: {sim_server.url} (nodes {', '.join(nodes)});"
                    f" its state is kept in {sim_state} ({restored} containers restored)",
                    (
                        f"  tenant apps: http://<subdomain>.{settings.base_domain}:{caddy[2]}/"
                        " (through Caddy)"
                        if caddy
                        else "  tenant apps: install Caddy (Debian: caddy) to reach them by name"
                    ),
                    "",
                    "Create a tenant (in the default project) and watch it become active:",
                    f"  export API_TOKEN={token}",
                    f"  curl -s -X POST {local}/api/v1/tenants \\",
                    '       -H "Authorization: Bearer $API_TOKEN" \\',
                    "       -H 'Content-Type: application/json' -d '{\"subdomain\": \"hello\"}'",
                    f'  curl -s {local}/api/v1/tenants -H "Authorization: Bearer $API_TOKEN"',
                    "",
                    "Stop with Ctrl-C.",
                ]
            ),
            flush=True,
        )
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
    finally:
        # Graceful: uvicorn runs the app's shutdown (workers, audit flush) before returning.
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(serving, timeout=15)
        if caddy is not None:  # first, and without awaiting: nothing can interrupt it
            caddy[0].terminate()
            caddy[0].wait(timeout=10)
        for ssh in ssh_servers:
            with contextlib.suppress(Exception):
                await ssh.close()
        saver.cancel()
        with contextlib.suppress(BaseException):
            await saver
        with contextlib.suppress(Exception):
            sim.save(sim_state)
        await sim_server.close()
        with contextlib.suppress(Exception):
            await sim.close()  # type: ignore[attr-defined]
        if sink is not None:
            await sink.close()


def demo_main(settings: Settings, *, database_url: str, host: str, port: int) -> None:
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    # A signal asks for a graceful stop; it never cancels the task, so the clean-up (the
    # local Caddy above all) cannot be cut short. While uvicorn serves it catches the signal
    # itself, shuts down, and raises it again afterwards, which lands here.
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.run_until_complete(
        run_demo(settings, database_url=database_url, host=host, port=port, stop=stop)
    )
    loop.close()
