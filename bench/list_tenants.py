"""P2: `GET /api/v1/tenants` with 100,000 tenants, 50 per page, at 50 concurrent clients.

Next to it, in the same run, a bare ASGI endpoint runs the very same SQL (the tenants
service's `tenant_page` query through the same pool) and returns the JSON, with none of the
framework, middleware, auth or validation. The ratio of the two throughputs is what the
full stack costs. Both servers run as separate uvicorn processes. The load comes from wrk
when it is installed (`apt-get install wrk`), which takes less of the two cores from the
servers than the alternative, httpx clients in this process (`--load python`).

    .venv/bin/python bench/list_tenants.py --tenants 100000 --clients 50 --seconds 15
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def bare_app(database_url: str):  # type: ignore[no-untyped-def]
    """The same query as the API's list, served by a raw ASGI callable."""
    from controlplane.db import Database, load_queries

    query = load_queries("controlplane.tenants")["tenant_page"]
    state: dict[str, Database] = {}

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    state["db"] = await Database.connect(database_url, min_size=2, max_size=20)
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await state["db"].close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        row = await state["db"].fetch_one(
            query,
            {
                "status": None,
                "node_id": None,
                "project_id": None,
                "owner": None,
                "include_deleted": False,
                "limit": 50,
                "offset": 0,
            },
        )
        assert row is not None
        body = json.dumps(
            {"items": row["items"], "total": row["total"], "limit": 50, "offset": 0}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


def serve_bare(database_url: str, port: int) -> None:
    import uvicorn

    uvicorn.run(bare_app(database_url), host="127.0.0.1", port=port, log_level="warning")


def seed(url: str, n: int) -> None:
    node, project = uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO nodes (id, name, api_url, pve_node, token_id, token_secret_sealed,"
            " total_ram_mb, vmid_range_start, vmid_range_end, status)"
            " VALUES (%s, 'bench', 'https://pve.invalid:8006', 'pve1', 'root@pam!b', 'v1:x',"
            " 100000000, 100, 999999999, 'online')",
            (node,),
        )
        conn.execute(
            "INSERT INTO projects (id, name, slug, template_vmid, ram_mb, cores, disk_gb, app_port)"
            " VALUES (%s, 'P', 'p', 9000, 512, 1, 8, 8080)",
            (project,),
        )
        conn.execute(
            "INSERT INTO tenants (id, name, subdomain, project_id, node_id, vmid, ip_address,"
            " ram_mb, cores, ram_reserved, status, created_at)"
            " SELECT gen_random_uuid(), 't' || g, 't' || g, %s, %s, 10000 + g, host('10.0.0.0'::inet + g), 512, 1,"
            " true, 'active', now() - make_interval(secs => g)"
            " FROM generate_series(1, %s) g",
            (project, node, n),
        )
        conn.execute("VACUUM ANALYZE tenants")  # as autovacuum leaves a live table


async def wait_up(url: str) -> None:
    async with httpx.AsyncClient(timeout=1) as c:
        for _ in range(300):
            try:
                await c.get(url)
                return
            except httpx.HTTPError:
                await asyncio.sleep(0.1)
    raise TimeoutError(url)


async def hammer(
    url: str, headers: dict[str, str], clients: int, seconds: float
) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=30) as c:
        deadline = time.monotonic() + seconds

        async def one() -> None:
            nonlocal errors
            while time.monotonic() < deadline:
                t0 = time.perf_counter()
                try:
                    r = await c.get(url)
                    errors += r.status_code != 200
                except httpx.HTTPError:
                    errors += 1
                latencies.append(time.perf_counter() - t0)

        started = time.monotonic()
        await asyncio.gather(*(one() for _ in range(clients)))
        elapsed = time.monotonic() - started
    return {
        "rps": len(latencies) / elapsed,
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "errors": errors,
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


_WRK_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def _wrk_seconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"unexpected wrk duration {text!r}")
    return float(match.group(1)) * _WRK_UNITS[match.group(2)]


def wrk_hammer(url: str, headers: dict[str, str], clients: int, seconds: float) -> dict[str, float]:
    """The same measurement with wrk (C, one thread): the load costs the server's cores less."""
    command = ["wrk", "-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    latency = dict(re.findall(r"^\s+(50|99)(?:\.000)?%\s+(\S+)\s*$", out, re.M))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rps is None or set(latency) != {"50", "99"}:
        raise RuntimeError(f"could not read wrk's output:\n{out}")
    return {
        "rps": float(rps.group(1)),
        "p50": _wrk_seconds(latency["50"]),
        "p99": _wrk_seconds(latency["99"]),
        "errors": (int(non_2xx.group(1)) if non_2xx else 0)
        + (sum(int(n) for n in socket.groups()) if socket else 0),
    }


async def main(args: argparse.Namespace) -> None:
    from controlplane.db.embedded import start_embedded
    from controlplane.db.migrate import migrate

    pg = start_embedded(
        Path(tempfile.mkdtemp(prefix="cp-bench-pg-")) / "data", cleanup_mode="delete"
    )
    with psycopg.connect(pg.get_uri(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE bench")
    url = pg.get_uri(database="bench")
    await migrate(url)
    t0 = time.perf_counter()
    seed(url, args.tenants)
    print(f"seeded {args.tenants} tenants in {time.perf_counter() - t0:.1f} s")

    token = secrets.token_urlsafe(32)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "API_TOKEN": token,
        "ENCRYPTION_KEY": secrets.token_hex(32),
        "JWT_SECRET": secrets.token_hex(32),
        "RUN_WORKERS": "false",
        "LOG_LEVEL": "WARNING",
        "NODE_POLL_SECONDS": "3600",
        "TENANT_POLL_SECONDS": "3600",
    }
    full = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "controlplane.cli",
            "serve",
            "--port",
            str(args.port),
            "--no-workers",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    bare = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--serve-bare",
            "--database-url",
            url,
            "--port",
            str(args.port + 1),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        full_url = f"http://127.0.0.1:{args.port}/api/v1/tenants?limit=50"
        bare_url = f"http://127.0.0.1:{args.port + 1}/"
        await wait_up(f"http://127.0.0.1:{args.port}/healthz")
        await wait_up(bare_url)
        auth = {"Authorization": f"Bearer {token}"}
        await hammer(full_url, auth, args.clients, 2)  # warm-up
        await hammer(bare_url, {}, args.clients, 2)
        results = []
        for process, url, headers in ((full, full_url, auth), (bare, bare_url, {})):
            cpu_before = cpu_seconds(process.pid)
            if args.load == "wrk":
                result = wrk_hammer(url, headers, args.clients, args.seconds)
            else:
                result = await hammer(url, headers, args.clients, args.seconds)
            served = result["rps"] * args.seconds
            result["cpu_ms"] = (cpu_seconds(process.pid) - cpu_before) * 1000 / served
            results.append(result)
        api, raw = results
    finally:
        for p in (full, bare):
            p.terminate()
            p.wait(timeout=20)
    print(
        f"P2 GET /api/v1/tenants, {args.tenants} tenants, 50 per page, {args.clients} clients, {args.seconds:g} s each, load from {args.load}"
    )
    for name, r in (("API (full stack)", api), ("bare ASGI, same SQL", raw)):
        print(
            f"  {name:20s} {r['rps']:8.1f} req/s  p50 {r['p50'] * 1000:7.1f} ms  p99 {r['p99'] * 1000:7.1f} ms"
            f"  server CPU {r['cpu_ms']:5.2f} ms/req  errors {r['errors']}"
        )
    print(f"  ratio (API / bare)   {api['rps'] / raw['rps']:8.3f}  (goal >= 0.7)")
    print(f"  server CPU per request, API / bare: {api['cpu_ms'] / raw['cpu_ms']:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--port", type=int, default=18190)
    parser.add_argument(
        "--load",
        choices=("wrk", "python"),
        default="wrk" if shutil.which("wrk") else "python",
        help="load generator: wrk (Debian package, when installed) or httpx in this process",
    )
    parser.add_argument("--serve-bare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(args.database_url, args.port)
    else:
        asyncio.run(main(args))
