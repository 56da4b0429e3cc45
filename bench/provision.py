"""P1: provisioning fan-out. N tenants over M simulated nodes with fixed task times.

Prints the wall time from the first create to the last `active`, the ideal the simulator's
own constraints allow, their ratio, and the API's latency during the run (POST creates and
GET list/health while the workers run in the same process, as `controlplane serve` does).

The ideal: clones of one template on one node are serialised by Proxmox, so a node with n
tenants needs at least n * clone + start; everything else runs in parallel up to the
worker concurrency C, so the whole run needs at least N * (clone + start) / C. The ideal is
the larger of the two.

    .venv/bin/python bench/provision.py --tenants 200 --nodes 4
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
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
from controlplane.web.server import uvicorn_config

TOKEN_ID, TOKEN_SECRET = "root@pam!bench", "bench-secret-0123456789"
CHILDREN: list[subprocess.Popen[bytes]] = []  # stopped however the run ends


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def ideal_seconds(n: int, m: int, clone: float, start: float, concurrency: int) -> float:
    per_node = -(-n // m)  # ceil
    return max(per_node * clone + start, n * (clone + start) / concurrency)


async def main(args: argparse.Namespace) -> None:
    pgdir = Path(tempfile.mkdtemp(prefix="cp-bench-pg-"))
    server_pg = start_embedded(pgdir / "data", cleanup_mode="delete")
    admin_url = server_pg.get_uri()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("CREATE DATABASE bench")
    url = server_pg.get_uri(database="bench")

    node_names = tuple(f"pve{i + 1}" for i in range(args.nodes))
    # The simulated cluster runs in a process of its own, as a real cluster would: the
    # control plane's load must not slow down the "Proxmox" it is measured against.
    sim_url = f"http://127.0.0.1:{args.port + 1}"
    sim_proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "controlplane.cli",
            "pve-sim",
            "--http",
            "--port",
            str(args.port + 1),
            "--nodes",
            ",".join((*node_names, "probe")),
            "--token",
            f"{TOKEN_ID}={TOKEN_SECRET}",
            "--node-memory-mb",
            "1000000",
            "--task-time",
            f"vzclone={args.clone},vzstart={args.start}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    CHILDREN.append(sim_proc)
    async with httpx.AsyncClient() as probe:
        for _ in range(300):
            try:
                await probe.get(f"{sim_url}/_sim/state")
                break
            except httpx.HTTPError:
                await asyncio.sleep(0.05)

    api_token = secrets.token_urlsafe(32)
    encryption_key, jwt_secret = secrets.token_hex(32), secrets.token_hex(32)
    worker_proc = None
    if args.separate_worker:
        # Production shape for heavy API traffic: API replicas without workers, plus a
        # `controlplane worker` process; the burst of creates then never delays the workers.
        worker_proc = subprocess.Popen(
            [sys.executable, "-m", "controlplane.cli", "worker"],
            env={
                **os.environ,
                "DATABASE_URL": url,
                "API_TOKEN": api_token,
                "ENCRYPTION_KEY": encryption_key,
                "JWT_SECRET": jwt_secret,
                "WORKER_CONCURRENCY": str(args.concurrency),
                "NODE_POLL_SECONDS": "3600",
                "TENANT_POLL_SECONDS": "3600",
                "LOG_LEVEL": "WARNING",
            },
        )
        CHILDREN.append(worker_proc)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        api_token=api_token,
        encryption_key=encryption_key,
        jwt_secret=jwt_secret,
        run_workers=not args.separate_worker,
        database_url=url,
        worker_concurrency=args.concurrency,
        node_poll_seconds=3600,
        tenant_poll_seconds=3600,
        rate_limit_api="1000000/minute",  # one client address drives the whole benchmark
        log_level="WARNING",
    )
    app = create_app(settings)
    server = uvicorn.Server(uvicorn_config(app, host="127.0.0.1", port=args.port))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    base = f"http://127.0.0.1:{args.port}"
    headers = {"Authorization": f"Bearer {api_token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as api:
        projects = []
        for i, name in enumerate(node_names):
            r = await api.post(
                "/api/v1/nodes",
                json={
                    "name": name,
                    "api_url": sim_url,
                    "pve_node": name,
                    "token_id": TOKEN_ID,
                    "token_secret": TOKEN_SECRET,
                    "verify_tls": False,
                    "vmid_range_start": 10000 + i * 10000,
                    "vmid_range_end": 19999 + i * 10000,
                },
            )
            r.raise_for_status()
            template = r.json()["templates"][0]
            r = await api.post(
                "/api/v1/projects",
                json={"name": f"P{i}", "slug": f"p{i}", "template_vmid": template, "ram_mb": 256},
            )
            r.raise_for_status()
            projects.append(r.json()["id"])

        r = await api.post(
            "/api/v1/nodes",
            json={
                "name": "probe",
                "api_url": sim_url,
                "pve_node": "probe",
                "token_id": TOKEN_ID,
                "token_secret": TOKEN_SECRET,
                "verify_tls": False,
                "vmid_range_start": 900000,
                "vmid_range_end": 999999,
            },
        )
        r.raise_for_status()
        r = await api.post(
            "/api/v1/projects",
            json={
                "name": "Probe",
                "slug": "probe",
                "ram_mb": 256,
                "template_vmid": r.json()["templates"][0],
            },
        )
        r.raise_for_status()
        probe_project = r.json()["id"]

        post_latency: list[float] = []
        get_latency: list[float] = []
        done = asyncio.Event()

        async def reader() -> None:
            while not done.is_set():
                t0 = time.perf_counter()
                r = await api.get("/api/v1/tenants", params={"limit": 50})
                get_latency.append(time.perf_counter() - t0)
                r.raise_for_status()
                await asyncio.sleep(0.05)

        async def create(i: int) -> None:
            t0 = time.perf_counter()
            r = await api.post(
                "/api/v1/tenants",
                json={"project_id": projects[i % len(projects)], "subdomain": f"bench{i}"},
            )
            post_latency.append(time.perf_counter() - t0)
            r.raise_for_status()

        started = time.perf_counter()
        readers = [asyncio.create_task(reader()) for _ in range(2)]
        await asyncio.gather(*(create(i) for i in range(args.tenants)))
        while True:
            r = await api.get("/api/v1/tenants", params={"status": "active", "limit": 1})
            if r.json()["total"] >= args.tenants:
                break
            errors = (
                await api.get("/api/v1/tenants", params={"status": "error", "limit": 1})
            ).json()
            if errors["total"]:
                raise SystemExit(f"a tenant failed: {errors['items'][0]['last_error']}")
            await asyncio.sleep(0.05)
        wall = time.perf_counter() - started
        done.set()
        await asyncio.gather(*readers)

        # P3: while another N tenants provision, one client creates tenants one at a time
        # (on a node of its own, so its clones do not queue behind the burst's).
        probe_latency: list[float] = []
        burst = asyncio.gather(*(create(args.tenants + i) for i in range(args.tenants)))
        await asyncio.sleep(0.5)
        probe_started = time.perf_counter()
        i = 0
        while time.perf_counter() - probe_started < args.probe_seconds:
            t0 = time.perf_counter()
            r = await api.post(
                "/api/v1/tenants", json={"project_id": probe_project, "subdomain": f"probe{i}"}
            )
            probe_latency.append(time.perf_counter() - t0)
            r.raise_for_status()
            i += 1
            await asyncio.sleep(0.05)
        await burst
        provisioning_now = (
            await api.get("/api/v1/tenants", params={"status": "provisioning", "limit": 1})
        ).json()["total"]

    ideal = ideal_seconds(args.tenants, args.nodes, args.clone, args.start, args.concurrency)
    where = "a separate worker process" if args.separate_worker else "workers inside serve"
    print(
        f"P1 provisioning fan-out: N={args.tenants} M={args.nodes} C={args.concurrency} "
        f"clone={args.clone}s start={args.start}s, {where}"
    )
    print(f"  wall        {wall:8.2f} s")
    print(f"  ideal       {ideal:8.2f} s")
    print(f"  ratio       {wall / ideal:8.3f}  (goal <= 1.10)")
    print(
        f"  POST /tenants  p50 {percentile(post_latency, 50) * 1000:7.1f} ms  "
        f"p99 {percentile(post_latency, 99) * 1000:7.1f} ms  (n={len(post_latency)})"
    )
    print(
        f"  GET  /tenants  p50 {percentile(get_latency, 50) * 1000:7.1f} ms  "
        f"p99 {percentile(get_latency, 99) * 1000:7.1f} ms  (n={len(get_latency)}, "
        f"mean {statistics.fmean(get_latency) * 1000:.1f} ms)"
    )
    print(
        f"P3 POST /tenants one at a time while {args.tenants} more provision: "
        f"p50 {percentile(probe_latency, 50) * 1000:.1f} ms  "
        f"p99 {percentile(probe_latency, 99) * 1000:.1f} ms  (n={len(probe_latency)}; "
        f"{provisioning_now} still provisioning at the end)"
    )
    if worker_proc is not None:
        worker_proc.terminate()
        worker_proc.wait(timeout=30)
    server.should_exit = True
    await serving
    sim_proc.terminate()
    sim_proc.wait(timeout=30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--clone", type=float, default=0.5, help="seconds per clone task")
    parser.add_argument("--start", type=float, default=0.2, help="seconds per start task")
    parser.add_argument(
        "--separate-worker", action="store_true", help="workers in their own process"
    )
    parser.add_argument("--probe-seconds", type=float, default=10.0, help="P3 duration")
    parser.add_argument("--port", type=int, default=int(os.environ.get("BENCH_PORT", "18181")))
    try:
        asyncio.run(main(parser.parse_args()))
    finally:
        for child in CHILDREN:
            if child.poll() is None:
                child.terminate()
                child.wait(timeout=30)
