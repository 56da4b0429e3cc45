"""Live events: the time from a tenant's status change being committed to its event
arriving on an admin `GET /api/v1/events` stream of a separate `serve` process.

A writer changes one tenant's status `--changes` times straight in PostgreSQL (as a
worker on another replica would), one commit at a time, `--interval` apart; the latency
of each is from the moment the writer sent the autocommitted UPDATE until the stream
delivered the matching `event: tenant` frame (so the path is the statement and its commit,
trigger, NOTIFY, the hub's read, the fan-out and the HTTP stream). Timing from the
commit's return instead lost samples: the frame often arrives before the writer's
`execute` resumes.

    .venv/bin/python bench/events_latency.py --changes 300 --interval 0.02
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
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
    token = secrets.token_urlsafe(32)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "API_TOKEN": token,
        "ENCRYPTION_KEY": secrets.token_hex(32),
        "JWT_SECRET": secrets.token_hex(32),
        "LOG_LEVEL": "WARNING",
        "NODE_POLL_SECONDS": "3600",
        "TENANT_POLL_SECONDS": "3600",
    }
    serve = subprocess.Popen(
        [sys.executable, "-m", "controlplane.cli", "serve", "--port", str(args.port),
         "--no-workers"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{args.port}"
    tenant = uuid.uuid4()
    committed: dict[str, float] = {}
    latencies: list[float] = []
    try:
        await wait_healthy(base)
        writer = await psycopg.AsyncConnection.connect(url, autocommit=True)
        await writer.execute(
            "INSERT INTO tenants (id, name, subdomain, ram_mb, cores, status)"
            " VALUES (%s, 'bench', 'bench', 64, 1, 'active')",
            (tenant,),
        )
        headers = {"Authorization": f"Bearer {token}"}
        async with (
            httpx.AsyncClient(base_url=base, timeout=None) as client,
            client.stream("GET", "/api/v1/events", headers=headers) as stream,
        ):
            done = asyncio.Event()

            async def read() -> None:
                async for line in stream.aiter_lines():
                    if not line.startswith("data: "):
                        continue
                    data = json.loads(line[6:])
                    mark = data.get("name", "")
                    if mark in committed:
                        latencies.append(time.perf_counter() - committed.pop(mark))
                        if len(latencies) == args.changes:
                            done.set()
                            return

            reader = asyncio.create_task(read())
            await asyncio.sleep(0.5)  # the stream is subscribed
            for i in range(args.changes):
                mark = f"change-{i}"
                status = "suspended" if i % 2 == 0 else "active"
                committed[mark] = time.perf_counter()  # before: the frame may beat the ack
                await writer.execute(
                    "UPDATE tenants SET status = %s, name = %s WHERE id = %s",
                    (status, mark, tenant),
                )
                await asyncio.sleep(args.interval)
            await asyncio.wait_for(done.wait(), 30)
            reader.cancel()
        await writer.close()
    finally:
        serve.terminate()
        serve.wait(10)
        del pg  # cleanup_mode="delete": stopped and removed with the handle
    ms = [v * 1000 for v in latencies]
    print(f"{len(ms)} status changes, {args.interval * 1000:.0f} ms apart: commit -> event"
          f" p50 {percentile(ms, 50):.1f} ms, p90 {percentile(ms, 90):.1f} ms,"
          f" p99 {percentile(ms, 99):.1f} ms, max {max(ms):.1f} ms")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=300)
    parser.add_argument("--interval", type=float, default=0.02)
    parser.add_argument("--port", type=int, default=18601)
    asyncio.run(main(parser.parse_args()))
