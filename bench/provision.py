"""P1: provisioning fan-out. N tenants over M simulated nodes with fixed task times.

Prints the wall time from the first create to the last `active`, the ideal the simulator's
own constraints allow, their ratio, and the API's latency during the run (POST creates and
GET list while the workers run). The control plane is a real `controlplane serve` process,
its workers in the child it supervises (or, with --inline-workers, in its own event loop).

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

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from controlplane.db.embedded import start_embedded

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
    # The control plane as it runs in production: a `controlplane serve` process (the API,
    # and the workers in a child it supervises unless --inline-workers), apart from this
    # benchmark's own clients.
    serve_proc = subprocess.Popen(
        [sys.executable, "-m", "controlplane.cli", "serve", "--port", str(args.port)],
        env={
            **os.environ,
            "DATABASE_URL": url,
            "API_TOKEN": api_token,
            "ENCRYPTION_KEY": secrets.token_hex(32),
            "JWT_SECRET": secrets.token_hex(32),
            "WORKER_PROCESS": "false" if args.inline_workers else "true",
            "WORKER_CONCURRENCY": str(args.concurrency),
            "NODE_POLL_SECONDS": "3600",
            "TENANT_POLL_SECONDS": "3600",
            "RATE_LIMIT_API": "1000000/minute",  # one client address drives the whole run
            "LOG_LEVEL": "WARNING",
        },
    )
    CHILDREN.append(serve_proc)
    base = f"http://127.0.0.1:{args.port}"
    headers = {"Authorization": f"Bearer {api_token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as api:
        for _ in range(600):
            try:
                if (await api.get("/healthz")).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)
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
        await asyncio.gather(*(create(i) for i in range(0 if args.p3_only else args.tenants)))
        while True:
            r = await api.get("/api/v1/tenants", params={"status": "active", "limit": 1})
            if args.p3_only or r.json()["total"] >= args.tenants:
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
        probe_during: list[float] = []  # sent while the burst's own POSTs were in flight
        burst_took: list[float] = []
        burst_started = time.perf_counter()
        burst = asyncio.gather(*(create(args.tenants + i) for i in range(args.tenants)))
        burst.add_done_callback(lambda _: burst_took.append(time.perf_counter() - burst_started))
        await asyncio.sleep(0.5)
        probe_started = time.perf_counter()
        i = 0
        while time.perf_counter() - probe_started < args.probe_seconds:
            t0 = time.perf_counter()
            in_burst = not burst.done()
            r = await api.post(
                "/api/v1/tenants", json={"project_id": probe_project, "subdomain": f"probe{i}"}
            )
            probe_latency.append(time.perf_counter() - t0)
            if in_burst:
                probe_during.append(probe_latency[-1])
            r.raise_for_status()
            i += 1
            await asyncio.sleep(0.05)
        await burst
        provisioning_now = (
            await api.get("/api/v1/tenants", params={"status": "provisioning", "limit": 1})
        ).json()["total"]

    ideal = ideal_seconds(args.tenants, args.nodes, args.clone, args.start, args.concurrency)
    where = "workers inside the API process" if args.inline_workers else "workers in a child"
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
    probe_after = probe_latency[len(probe_during) :]
    print(
        f"   after the burst's POSTs had all returned: "
        f"p50 {percentile(probe_after, 50) * 1000:.1f} ms  "
        f"p99 {percentile(probe_after, 99) * 1000:.1f} ms  (n={len(probe_after)})"
    )
    print(
        f"   while the burst's {args.tenants} POSTs were still in flight: "
        f"p50 {percentile(probe_during, 50) * 1000:.1f} ms  "
        f"p99 {percentile(probe_during, 99) * 1000:.1f} ms  (n={len(probe_during)}; "
        f"the burst's POSTs took {burst_took[0]:.2f} s in all)"
    )
    serve_proc.terminate()
    serve_proc.wait(timeout=60)
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
        "--inline-workers",
        action="store_true",
        help="WORKER_PROCESS=false: the workers in the API's own process",
    )
    parser.add_argument("--p3-only", action="store_true", help="skip P1, measure only P3")
    parser.add_argument("--probe-seconds", type=float, default=10.0, help="P3 duration")
    parser.add_argument("--port", type=int, default=int(os.environ.get("BENCH_PORT", "18181")))
    try:
        asyncio.run(main(parser.parse_args()))
    finally:
        for child in CHILDREN:
            if child.poll() is None:
                child.terminate()
                child.wait(timeout=30)
