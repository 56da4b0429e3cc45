"""P9: draining a node. N tenants on one node, drained onto another with `max_parallel`
moves at once, each flipped after its health path answers on the target. `--method
migrate`: restart migrations of local 8 GiB lvmthin disks; `--method backup_restore`:
linked clones on a local zfspool, which Proxmox refuses to migrate, moved by vzdump to a
shared NFS store, destroy, restore on the target. Prints the drain's total time from the
request to `done`, each tenant's downtime as the move recorded it (stop to flip), and the
total against the ideal: the sum of each move's task times (as the simulator runs them)
divided by the parallelism.

    .venv/bin/python bench/drain.py --tenants 10 --parallel 2 --method migrate
    .venv/bin/python bench/drain.py --tenants 10 --parallel 2 --method backup_restore
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

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
from controlplane.pvesim.storage import Storage
from controlplane.web.server import uvicorn_config

TOKEN_ID, TOKEN_SECRET = "root@pam!bench", "bench-secret-0123456789"
DISK_GIB = 8
DURATIONS = {"vzclone": 0.2, "vzstart": 0.5, "vzstop": 0.3, "vzshutdown": 0.5,
             "vzmigrate": 1.0, "vzmigrate_per_gib": 0.1, "vzdump": 1.0, "vzdump_per_gib": 0.1,
             "vzdestroy": 0.2, "vzrestore": 1.0, "vzrestore_per_gib": 0.1,
             "imgdel": 0.1}  # fmt: skip


def down_seconds(method: str) -> float:
    """The task time while the tenant is down: from the stop to the start on the target."""
    d = DURATIONS
    if method == "migrate":
        return d["vzshutdown"] + d["vzmigrate"] + d["vzmigrate_per_gib"] * DISK_GIB + d["vzstart"]
    return (
        d["vzstop"]
        + d["vzdump"]
        + d["vzdump_per_gib"] * DISK_GIB
        + d["vzdestroy"]
        + d["vzrestore"]
        + d["vzrestore_per_gib"] * DISK_GIB
        + d["vzstart"]
    )


def move_seconds(method: str) -> float:
    """Every task of one move (backup and restore deletes its archive after the flip)."""
    return down_seconds(method) + (DURATIONS["imgdel"] if method == "backup_restore" else 0.0)


async def main(args: argparse.Namespace) -> None:
    pgdir = Path(tempfile.mkdtemp(prefix="cp-bench-pg-"))
    server_pg = start_embedded(pgdir / "data", cleanup_mode="delete")
    with psycopg.connect(server_pg.get_uri(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE bench")
    zfs: dict[str, object] = {}
    if args.method == "backup_restore":
        nfs = Storage("nfs", "nfs", frozenset({"backup"}), shared=True, path="/mnt/pve/nfs")
        zfs = {"storage": "local-zfs", "storage_type": "zfspool", "extra_storages": [nfs]}
    sim = Simulator(
        tokens=[Token(TOKEN_ID, TOKEN_SECRET, None)],
        nodes=("pve1", "pve2"),
        task_durations=DURATIONS,
        node_memory_mb=1_000_000,
        loopback_ips=True,  # each container's app answers its health path on its address
        **zfs,  # type: ignore[arg-type]
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
        tenant_networks=["127.100.0.0/16"],
    )
    app = create_app(settings)
    server = uvicorn.Server(uvicorn_config(app, host="127.0.0.1", port=args.port))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{args.port}", headers=headers, timeout=60
        ) as api:
            nodes = []
            for i, name in enumerate(("pve1", "pve2")):
                r = await api.post(
                    "/api/v1/nodes",
                    json={
                        "name": name,
                        "api_url": sim_server.url,
                        "pve_node": name,
                        "token_id": TOKEN_ID,
                        "token_secret": TOKEN_SECRET,
                        "verify_tls": False,
                        "vmid_range_start": 10000 + 10000 * i,
                        "vmid_range_end": 19999 + 10000 * i,
                    },
                )
                r.raise_for_status()
                nodes.append(r.json())
            r = await api.post(
                "/api/v1/projects",
                json={
                    "name": "P",
                    "slug": "p",
                    "template_vmid": nodes[0]["templates"][0],
                    "ram_mb": 256,
                    "app_port": 8080,
                    "health_path": "/",
                },
            )
            project = r.json()["id"]
            ids = []
            for i in range(args.tenants):
                r = await api.post(
                    "/api/v1/tenants",
                    json={"project_id": project, "subdomain": f"d{i}", "node_id": nodes[0]["id"]},
                )
                r.raise_for_status()
                ids.append(r.json()["id"])
            while True:
                page = (await api.get("/api/v1/tenants", params={"limit": 200})).json()["items"]
                if all(t["status"] == "active" for t in page):
                    break
                await asyncio.sleep(0.1)
            started = time.perf_counter()
            r = await api.post(
                f"/api/v1/nodes/{nodes[0]['id']}/drain", json={"max_parallel": args.parallel}
            )
            r.raise_for_status()
            while True:
                status = (await api.get(f"/api/v1/nodes/{nodes[0]['id']}/drain")).json()
                if status["status"] != "running":
                    break
                await asyncio.sleep(0.02)
            total = time.perf_counter() - started
            downtimes, methods = [], set()
            for tenant_id in ids:
                ops = (await api.get(f"/api/v1/tenants/{tenant_id}/operations")).json()
                move = next(o for o in ops if o["kind"] == "move")
                downtimes.append(move.get("downtime_s") or float("nan"))
                methods.add(move.get("method"))
    finally:
        server.should_exit = True
        await serving
        await sim_server.close()
    ideal = args.tenants * move_seconds(args.method) / args.parallel
    print(f"P9 drain of {args.tenants} tenants, {args.parallel} at a time, {sorted(methods)}")
    print(f"moved {status['moved']}, failed {status['failed']}, left {status['remaining']}")
    print(
        f"downtime per tenant: median {statistics.median(downtimes):.2f} s, max "
        f"{max(downtimes):.2f} s (task time while down: {down_seconds(args.method):.2f} s)"
    )
    print(f"total {total:.2f} s, ideal {ideal:.2f} s, ratio {total / ideal:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--port", type=int, default=18573)
    parser.add_argument("--method", choices=("migrate", "backup_restore"), default="migrate")
    asyncio.run(main(parser.parse_args()))
