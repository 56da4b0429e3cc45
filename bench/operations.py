"""P8: the lifecycle's overhead. Each kind of operation, run one after another on one
tenant, timed from the API's 202 to the operation's `succeeded`, against the sum of the
Proxmox tasks it caused as the simulator was told to run them (its task durations, plus the
per-GiB part of backups and restores). The ratio is the control plane's overhead (goal:
at most 1.10): polling, SQL, the steps' own reads of Proxmox.

    .venv/bin/python bench/operations.py --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from controlplane.app import create_app
from controlplane.config import Settings
from controlplane.db.embedded import start_embedded
from controlplane.pvesim.app import create_app as create_sim_app
from controlplane.pvesim.auth import Token
from controlplane.pvesim.server import HttpServer
from controlplane.pvesim.simulator import Simulator
from controlplane.web.server import uvicorn_config

TOKEN_ID, TOKEN_SECRET = "root@pam!bench", "bench-secret-0123456789"
# Task times in seconds, in the proportions of a small container on local LVM.
DURATIONS = {
    "vzclone": 2.0, "vzstart": 0.5, "vzstop": 0.4, "vzdestroy": 0.4, "vzsnapshot": 0.6,
    "vzdelsnapshot": 0.4, "vzrollback": 0.8, "vzdump": 1.5, "vzdump_per_gib": 0.05,
    "vzrestore": 1.5, "vzrestore_per_gib": 0.05, "resize": 0.4, "vzreboot": 1.0, "imgdel": 0.3,
}  # fmt: skip


def expected(sim: Simulator, upids: list[str]) -> float:
    """What the tasks should take: their type's duration plus the per-GiB part."""
    total = 0.0
    for upid in upids:
        kind = sim.tasks[upid].type
        total += DURATIONS.get(kind, 0.05)
        per_gib = DURATIONS.get(f"{kind}_per_gib")
        if per_gib:
            total += per_gib * 8  # the template's 8 GiB disk
    return total


async def run_one(
    api: httpx.AsyncClient, sim: Simulator, method: str, path: str, body: Any
) -> tuple[float, float, str, float]:
    before = set(sim.tasks)
    started = time.perf_counter()
    r = await api.request(method, path, json=body)
    r.raise_for_status()
    op_id = r.json()["id"]
    while True:
        op = (await api.get(f"/api/v1/operations/{op_id}")).json()
        if op["status"] in ("succeeded", "failed"):
            break
        await asyncio.sleep(0.005)
    took = time.perf_counter() - started
    if op["status"] != "succeeded":
        raise SystemExit(f"{op['kind']} failed: {op['error']}")
    new = [u for u in sim.tasks if u not in before]
    # How long it waited to be claimed (the API's commit to a worker's claim).
    queued = datetime.fromisoformat(op["started_at"]) - datetime.fromisoformat(op["created_at"])
    return took, expected(sim, new), op["kind"], queued.total_seconds()


async def main(args: argparse.Namespace) -> None:
    pgdir = Path(tempfile.mkdtemp(prefix="cp-bench-pg-"))
    server_pg = start_embedded(pgdir / "data", cleanup_mode="delete")
    with psycopg.connect(server_pg.get_uri(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE bench")
    DURATIONS.update({k: v * args.scale for k, v in DURATIONS.items()})
    sim = Simulator(
        tokens=[Token(TOKEN_ID, TOKEN_SECRET, None)], nodes=("pve1",), task_durations=DURATIONS
    )
    sim_server = await HttpServer(create_sim_app(sim)).start()
    token = secrets.token_urlsafe(32)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        api_token=token,
        encryption_key=secrets.token_hex(32),
        jwt_secret=secrets.token_hex(32),
        database_url=server_pg.get_uri(database="bench"),
        node_poll_seconds=3600,
        tenant_poll_seconds=3600,
        rate_limit_api="1000000/minute",
        log_level="WARNING",
    )
    app = create_app(settings)
    server = uvicorn.Server(uvicorn_config(app, host="127.0.0.1", port=args.port))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    headers = {"Authorization": f"Bearer {token}"}
    rows: dict[str, list[tuple[float, float, float]]] = {}
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{args.port}", headers=headers, timeout=60
        ) as api:
            r = await api.post(
                "/api/v1/nodes",
                json={
                    "name": "pve1",
                    "api_url": sim_server.url,
                    "pve_node": "pve1",
                    "token_id": TOKEN_ID,
                    "token_secret": TOKEN_SECRET,
                    "verify_tls": False,
                    "vmid_range_start": 10000,
                    "vmid_range_end": 19999,
                },
            )
            r.raise_for_status()
            template = r.json()["templates"][0]
            r = await api.post(
                "/api/v1/projects",
                json={"name": "P", "slug": "p", "template_vmid": template, "ram_mb": 256},
            )
            project = r.json()["id"]
            r = await api.post("/api/v1/tenants", json={"project_id": project, "subdomain": "b"})
            tenant = r.json()
            while (await api.get(f"/api/v1/tenants/{tenant['id']}")).json()["status"] != "active":
                await asyncio.sleep(0.05)
            base = f"/api/v1/tenants/{tenant['id']}"
            confirm = {"confirm": "b"}
            for i in range(args.rounds):
                script: list[tuple[str, str, Any]] = [
                    ("POST", f"{base}/snapshots", {"name": f"s{i}"}),
                    ("POST", f"{base}/snapshots/s{i}/rollback", None),
                    ("DELETE", f"{base}/snapshots/s{i}", None),
                    ("POST", f"{base}/backups", None),
                    ("POST", f"{base}/restart", None),
                    ("POST", f"{base}/resize", {"disk_gb": 9 + i}),
                    ("POST", f"{base}/rebuild", confirm),
                ]
                for method, path, body in script:
                    took, ideal, kind, queued = await run_one(api, sim, method, path, body)
                    rows.setdefault(kind, []).append((took, ideal, queued))
                backup = (await api.get(f"{base}/backups")).json()[0]
                for method, path, body in (
                    ("POST", f"{base}/backups/{backup['id']}/restore", confirm),
                    ("DELETE", f"{base}/backups/{backup['id']}", None),
                ):
                    took, ideal, kind, queued = await run_one(api, sim, method, path, body)
                    rows.setdefault(kind, []).append((took, ideal, queued))
            if args.calls:
                text = (await api.get("/metrics")).text
                for line in text.splitlines():
                    if line.startswith(
                        (
                            "controlplane_proxmox_calls_total",
                            "controlplane_proxmox",
                            "controlplane_step",
                        )
                    ):
                        print(line)
    finally:
        server.should_exit = True
        await serving
        await sim_server.close()
    print(
        f"P8 lifecycle overhead ({args.rounds} rounds, task times x{args.scale:g}, median per kind)"
    )
    print(f"{'operation':<18} {'took s':>8} {'tasks s':>8} {'ratio':>6} {'queued ms':>10}")
    ratios = []
    for kind, values in rows.items():
        took = statistics.median(v[0] for v in values)
        ideal = statistics.median(v[1] for v in values)
        queued = statistics.median(v[2] for v in values) * 1000
        ratios.append(took / ideal)
        print(f"{kind:<18} {took:>8.3f} {ideal:>8.3f} {took / ideal:>6.3f} {queued:>10.1f}")
    print(f"all kinds: median ratio {statistics.median(ratios):.3f}, worst {max(ratios):.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--port", type=int, default=18571)
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply every task time (5: closer to real)"
    )
    parser.add_argument("--calls", action="store_true", help="print the Proxmox calls made")
    asyncio.run(main(parser.parse_args()))
