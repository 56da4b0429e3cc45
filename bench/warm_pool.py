"""P11 (issue 16 calls it P5): `POST /tenants` to `active`, with a warm pool spare and without.

The simulator runs with realistic task times (clone 20 s, start 2 s by default) in a process
of its own; the control plane is a real `controlplane serve` (workers in its child). Warm
projects (one per "warm" node, `warm_pool_size` spares each) are filled first; then tenants
are created one at a time on them, each measured from the POST to `active` (polled every
20 ms). Cold projects (pool 0, one per "cold" node, so their clones never queue behind one
another or behind a refill) give the baseline: their tenants are cloned. Prints p50 and p99
of both and the ratio of the p50s.

    .venv/bin/python bench/warm_pool.py --warm-nodes 3 --pool 2 --cold-nodes 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
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


async def wait_http(url: str, seconds: float) -> None:
    async with httpx.AsyncClient() as probe:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                await probe.get(url)
                return
            except httpx.HTTPError:
                await asyncio.sleep(0.05)
    raise SystemExit(f"{url} did not answer within {seconds} s")


async def main(args: argparse.Namespace) -> None:
    pgdir = Path(tempfile.mkdtemp(prefix="cp-bench-pg-"))
    server_pg = start_embedded(pgdir / "data", cleanup_mode="delete")
    with psycopg.connect(server_pg.get_uri(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE bench")
    url = server_pg.get_uri(database="bench")

    warm = [f"warm{i + 1}" for i in range(args.warm_nodes)]
    cold = [f"cold{i + 1}" for i in range(args.cold_nodes)]
    sim_url = f"http://127.0.0.1:{args.port + 1}"
    sim = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "controlplane.cli",
            "pve-sim",
            "--http",
            "--port",
            str(args.port + 1),
            "--nodes",
            ",".join(warm + cold),
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
    CHILDREN.append(sim)
    await wait_http(f"{sim_url}/_sim/state", 15)

    token = secrets.token_urlsafe(32)
    serve = subprocess.Popen(
        [sys.executable, "-m", "controlplane.cli", "serve", "--port", str(args.port)],
        env={
            **os.environ,
            "DATABASE_URL": url,
            "API_TOKEN": token,
            "ENCRYPTION_KEY": secrets.token_hex(32),
            "JWT_SECRET": secrets.token_hex(32),
            "NODE_POLL_SECONDS": "3600",
            "TENANT_POLL_SECONDS": "3600",
            "WARM_POOL_SECONDS": "0.5",
            "WARM_POOL_CONCURRENCY": str(max(2, args.warm_nodes)),
            "RATE_LIMIT_API": "1000000/minute",
            "LOG_LEVEL": "WARNING",
        },
    )
    CHILDREN.append(serve)
    base = f"http://127.0.0.1:{args.port}"
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as api:
        for _ in range(600):
            try:
                if (await api.get("/healthz")).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)
        projects: dict[str, str] = {}
        for i, name in enumerate(warm + cold):
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
            r = await api.post(
                "/api/v1/projects",
                json={
                    "name": name,
                    "slug": name,
                    "template_vmid": r.json()["templates"][0],
                    "ram_mb": 256,
                    "warm_pool_size": args.pool if name in warm else 0,
                },
            )
            r.raise_for_status()
            projects[name] = r.json()["id"]

        async def ready(name: str) -> int:
            r = await api.get(f"/api/v1/projects/{projects[name]}/spares")
            r.raise_for_status()
            return int(r.json()["ready"])

        async def fill(timeout: float) -> float:
            t0 = time.perf_counter()
            while min([await ready(n) for n in warm]) < args.pool:
                if time.perf_counter() - t0 > timeout:
                    raise SystemExit("the warm pools did not fill in time")
                await asyncio.sleep(0.2)
            return time.perf_counter() - t0

        filled = await fill(args.pool * (args.clone + 10) + 60)

        async def post_to_active(name: str, subdomain: str) -> float:
            t0 = time.perf_counter()
            r = await api.post(
                "/api/v1/tenants", json={"project_id": projects[name], "subdomain": subdomain}
            )
            r.raise_for_status()
            tenant = r.json()["id"]
            while True:
                got = (await api.get(f"/api/v1/tenants/{tenant}")).json()
                if got["status"] == "active":
                    return time.perf_counter() - t0
                if got["status"] == "error":
                    raise SystemExit(f"tenant failed: {got['last_error']}")
                await asyncio.sleep(0.02)

        # With a spare: one create at a time, so each measures a take, not a queue.
        with_spare: list[float] = []
        for round_ in range(args.pool):
            for name in warm:
                with_spare.append(await post_to_active(name, f"w{round_}-{name}"))
        # Without: clones on nodes of their own, all at once (their clones do not queue).
        without: list[float] = []
        for round_ in range(args.cold_rounds):
            without += await asyncio.gather(
                *(post_to_active(name, f"c{round_}-{name}") for name in cold)
            )

    p50w, p99w = percentile(with_spare, 50), percentile(with_spare, 99)
    p50c, p99c = percentile(without, 50), percentile(without, 99)
    print(
        f"P11 POST to active, clone={args.clone}s start={args.start}s "
        f"({args.warm_nodes} warm nodes x pool {args.pool}, filled in {filled:.1f} s; "
        f"{args.cold_nodes} cold nodes)"
    )
    print(f"  with a spare     p50 {p50w:6.2f} s  p99 {p99w:6.2f} s  (n={len(with_spare)})")
    print(f"  without (clone)  p50 {p50c:6.2f} s  p99 {p99c:6.2f} s  (n={len(without)})")
    print(
        f"  ratio without/with: p50 {p50c / p50w:.1f}x  p99 {p99c / p99w:.1f}x  "
        f"(goal: with <= 3 s, >= 6x faster)"
    )
    serve.terminate()
    serve.wait(timeout=60)
    sim.terminate()
    sim.wait(timeout=30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm-nodes", type=int, default=3)
    parser.add_argument("--pool", type=int, default=2, help="warm_pool_size of each warm project")
    parser.add_argument("--cold-nodes", type=int, default=3)
    parser.add_argument("--cold-rounds", type=int, default=1)
    parser.add_argument("--clone", type=float, default=20.0, help="seconds per clone task")
    parser.add_argument("--start", type=float, default=2.0, help="seconds per start task")
    parser.add_argument("--port", type=int, default=int(os.environ.get("BENCH_PORT", "18281")))
    try:
        asyncio.run(main(parser.parse_args()))
    finally:
        for child in CHILDREN:
            if child.poll() is None:
                child.terminate()
                child.wait(timeout=30)
