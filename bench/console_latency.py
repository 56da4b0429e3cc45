"""The browser console: key-to-echo round trip through the WebSocket, and the memory of
many open consoles.

A `controlplane serve` process (its own PostgreSQL, no workers) fronts a simulated cluster
whose node has the simulator's SSH endpoint (in this process). A console is a WebSocket to
`serve`, bridged to `pct enter` in a PTY over the node's pinned SSH connection. The round
trip is one keystroke sent as a binary frame until its echo (the PTY's line editor echoes
it) arrives back as a frame, `--keys` times, one at a time. The memory is the RSS of the
`serve` process before and after `--consoles` consoles are open at their prompt.

    .venv/bin/python bench/console_latency.py --keys 500 --consoles 50
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
from websockets.asyncio.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

TOKEN_ID = "root@pam!bench"
TOKEN_SECRET = "5e0c7c0e-1b2a-4c3d-9e8f-0a1b2c3d4e5f"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_healthy(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=2.0) as c:
        for _ in range(300):
            try:
                if (await c.get("/healthz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("serve did not come up")


async def until(ws: ClientConnection, needle: bytes) -> None:
    seen = b""
    async with asyncio.timeout(30):
        while needle not in seen:
            frame = await ws.recv()
            seen += frame if isinstance(frame, bytes) else frame.encode()


async def read_exactly(ws: ClientConnection, n: int) -> None:
    got = 0
    while got < n:
        frame = await ws.recv()
        got += len(frame)


async def open_console(api: httpx.AsyncClient, ws_base: str, tenant_id: str) -> ClientConnection:
    r = await api.post(f"/api/v1/tenants/{tenant_id}/console")
    r.raise_for_status()
    ws = await connect(ws_base + r.json()["ws_path"])
    await until(ws, b"# ")
    return ws


async def main(args: argparse.Namespace) -> None:
    from controlplane.db.embedded import start_embedded
    from controlplane.db.migrate import migrate
    from controlplane.pvesim.app import create_app as sim_app
    from controlplane.pvesim.auth import Token
    from controlplane.pvesim.models import Container
    from controlplane.pvesim.server import HttpServer
    from controlplane.pvesim.simulator import Simulator
    from controlplane.pvesim.ssh import start_ssh_server
    from controlplane.sshexec import generate_keypair

    pg = start_embedded(
        Path(tempfile.mkdtemp(prefix="cp-bench-pg-")) / "data", cleanup_mode="delete"
    )
    with psycopg.connect(pg.get_uri(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE bench")
    url = pg.get_uri(database="bench")
    await migrate(url)
    sim = Simulator(["pve1"], tokens=[Token(TOKEN_ID, TOKEN_SECRET, None)])
    sim_server = await HttpServer(sim_app(sim)).start()
    keys = generate_keypair()
    ssh = await start_ssh_server(sim, authorized_key=keys.public_openssh, node="pve1")
    token = secrets.token_urlsafe(32)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "API_TOKEN": token,
        "ENCRYPTION_KEY": secrets.token_hex(32),
        "JWT_SECRET": secrets.token_hex(32),
        "LOG_LEVEL": "WARNING",
        "NODE_POLL_SECONDS": "3600",
        "TENANT_POLL_SECONDS": "3600",
        "CONSOLE_MAX_PER_TENANT": str(max(args.consoles + 1, 3)),
        "RATE_LIMIT_API": "100000/minute",
    }
    serve = subprocess.Popen(
        [sys.executable, "-m", "controlplane.cli", "serve", "--port", str(port), "--no-workers"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base, ws_base = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"
    consoles: list[ClientConnection] = []
    rtts: list[float] = []
    try:
        await wait_healthy(base)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as api:
            tenant_id = await seed(api, url, sim, sim_server.url, ssh, keys, Container)
            first = await open_console(api, ws_base, tenant_id)
            await first.send(b"x")  # the line editor's echo of one key, as it comes back
            echo = await first.recv()
            assert isinstance(echo, bytes) and echo.startswith(b"x"), echo
            for _ in range(20):  # warm-up
                await first.send(b"x")
                await read_exactly(first, len(echo))
            for _ in range(args.keys):
                started = time.perf_counter()
                await first.send(b"x")
                await read_exactly(first, len(echo))
                rtts.append(time.perf_counter() - started)
            await first.send(b"\x15")  # ^U: drop the typed line
            await first.close()
            process = psutil.Process(serve.pid)
            await asyncio.sleep(1.0)  # the closed console's tasks are gone
            before = process.memory_info().rss
            for _ in range(args.consoles):
                consoles.append(await open_console(api, ws_base, tenant_id))
            await asyncio.sleep(1.0)
            after = process.memory_info().rss
            sessions = await count_open(url)
    finally:
        for ws in consoles:
            await ws.close()
        serve.terminate()
        serve.wait(10)
        await ssh.close()
        await sim_server.close()
        del pg
    ms = [v * 1000 for v in rtts]
    print(f"key to echo through the WebSocket, {len(ms)} keys: p50 {percentile(ms, 50):.2f} ms,"
          f" p90 {percentile(ms, 90):.2f} ms, p99 {percentile(ms, 99):.2f} ms,"
          f" max {max(ms):.2f} ms")  # fmt: skip
    delta = (after - before) / 2**20
    print(f"{args.consoles} open consoles ({sessions} session rows open): serve RSS"
          f" {before / 2**20:.1f} MiB -> {after / 2**20:.1f} MiB, +{delta:.1f} MiB"
          f" ({delta * 1024 / max(args.consoles, 1):.0f} KiB per console)")  # fmt: skip


async def seed(
    api: httpx.AsyncClient, url: str, sim: Any, sim_url: str, ssh: Any, keys: Any, container: Any
) -> str:
    node = {
        "name": "pve1", "api_url": sim_url, "pve_node": "pve1", "token_id": TOKEN_ID,
        "token_secret": TOKEN_SECRET, "verify_tls": False, "vmid_range_start": 10000,
        "vmid_range_end": 10999, "ssh_host": ssh.host, "ssh_port": ssh.port,
        "ssh_private_key": keys.private_pem, "ssh_host_key": ssh.host_public_key,
    }  # fmt: skip
    r = await api.post("/api/v1/nodes", json=node)
    r.raise_for_status()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("UPDATE nodes SET status = 'online', templates = '{9000}'")
        project = {"name": "Web", "slug": "web", "template_vmid": 9000, "is_default": True}
        (await api.post("/api/v1/projects", json=project)).raise_for_status()
        r = await api.post("/api/v1/tenants", json={"subdomain": "bench"})
        r.raise_for_status()
        tenant = r.json()
        await conn.execute(
            "UPDATE tenants SET status = 'active', step = NULL WHERE id = %s", (tenant["id"],)
        )
    ct = container(vmid=tenant["vmid"], node="pve1", config={"hostname": "bench"})
    sim.containers[ct.vmid] = ct
    await sim.container_started(ct)
    return str(tenant["id"])


async def count_open(url: str) -> int:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute("SELECT count(*) FROM console_sessions WHERE ended_at IS NULL")
        row = await cur.fetchone()
    return int(row[0]) if row else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=500)
    parser.add_argument("--consoles", type=int, default=50)
    asyncio.run(main(parser.parse_args()))
