"""P9: draining a node. N tenants on one node, drained onto another with `max_parallel`
moves at once (restart migration of a local 8 GiB disk). Prints the drain's total time from
the request to `done`, each tenant's downtime as the move recorded it, and the total
against the ideal: the sum of the migrations' task times (shutdown, copy, start, as the
simulator runs them) divided by the parallelism.

    .venv/bin/python bench/drain.py --tenants 10 --parallel 2
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
from controlplane.web.server import uvicorn_config

TOKEN_ID, TOKEN_SECRET = "root@pam!bench", "bench-secret-0123456789"
DISK_GIB = 8
DURATIONS = {"vzclone": 0.2, "vzstart": 0.5, "vzstop": 0.3, "vzshutdown": 0.5,
             "vzmigrate": 1.0, "vzmigrate_per_gib": 0.1}  # fmt: skip


def migration_seconds() -> float:
    d = DURATIONS
    return d["vzshutdown"] + d["vzmigrate"] + d["vzmigrate_per_gib"] * DISK_GIB + d["vzstart"]


async def main(args: argparse.Namespace) -> None:
    pgdir = Path(tempfile.mkdtemp(prefix="cp-bench-pg-"))
    server_pg = start_embedded(pgdir / "data", cleanup_mode="delete")
    with psycopg.connect(server_pg.get_uri(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE bench")
    sim = Simulator(
        tokens=[Token(TOKEN_ID, TOKEN_SECRET, None)],
        nodes=("pve1", "pve2"),
        task_durations=DURATIONS,
        node_memory_mb=1_000_000,
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
            downtimes = []
            for tenant_id in ids:
                ops = (await api.get(f"/api/v1/tenants/{tenant_id}/operations")).json()
                move = next(o for o in ops if o["kind"] == "move")
                downtimes.append(move["state"].get("downtime_s", float("nan")))
    finally:
        server.should_exit = True
        await serving
        await sim_server.close()
    ideal = args.tenants * migration_seconds() / args.parallel
    print(f"P9 drain of {args.tenants} tenants, {args.parallel} at a time")
    print(f"moved {status['moved']}, failed {status['failed']}, left {status['remaining']}")
    print(
        f"downtime per tenant: median {statistics.median(downtimes):.2f} s, max "
        f"{max(downtimes):.2f} s (the migration task: {migration_seconds():.2f} s)"
    )
    print(f"total {total:.2f} s, ideal {ideal:.2f} s, ratio {total / ideal:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--port", type=int, default=18573)
    asyncio.run(main(parser.parse_args()))
