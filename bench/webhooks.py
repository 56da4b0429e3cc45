"""Webhooks (P10): commit-to-receipt latency of signed deliveries, and what a slow receiver
costs the others.

Events are raised in their own committed transactions through `webhooks.catalog.enqueue`
(what a trigger or the billing code does), `--events` of them `--interval` apart; a
real HTTP receiver on loopback records when each arrives. The latency is from the
commit's return to the receiver reading the request. A second run adds an endpoint
whose receiver holds every request for `--slow-s` seconds: the fast endpoint's latency
should not move, and the enqueue (the only cost a request pays) stays the same.

    .venv/bin/python bench/webhooks.py --events 200 --interval 0.01
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from controlplane.config import Settings  # noqa: E402
from controlplane.crypto import Sealer  # noqa: E402
from controlplane.db import Database  # noqa: E402
from controlplane.db.embedded import start_embedded  # noqa: E402
from controlplane.db.migrate import migrate  # noqa: E402
from controlplane.pvesim.server import HttpServer  # noqa: E402
from controlplane.webhooks import service  # noqa: E402
from controlplane.webhooks.catalog import enqueue  # noqa: E402
from controlplane.webhooks.schemas import WebhookCreate  # noqa: E402
from controlplane.webhooks.sender import WebhookSender  # noqa: E402


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class Receiver:
    def __init__(self, hold_s: float = 0.0) -> None:
        self.hold_s = hold_s
        self.arrived: dict[str, float] = {}

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.arrived[json.loads(body)["data"]["n"]] = time.perf_counter()
        if self.hold_s:
            await asyncio.sleep(self.hold_s)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def run(db: Database, settings: Settings, sealer: Sealer, args: Any, slow: bool) -> None:
    await db.execute("TRUNCATE webhook_endpoints, webhook_events CASCADE")
    fast = Receiver()
    servers = [await HttpServer(fast.app).start()]
    await service.create_webhook(db, sealer, WebhookCreate(
        url=f"{servers[0].url}/fast", events=["billing.*"]))  # fmt: skip
    if slow:
        holder = Receiver(hold_s=args.slow_s)
        servers.append(await HttpServer(holder.app, request_timeout=600).start())
        await service.create_webhook(db, sealer, WebhookCreate(
            url=f"{servers[1].url}/slow", events=["billing.*"]))  # fmt: skip
    sender = WebhookSender(db, sealer, settings)
    sender.start()
    committed: dict[str, float] = {}
    enqueue_ms: list[float] = []
    try:
        for i in range(args.events):
            started = time.perf_counter()
            async with db.transaction() as tx:
                await enqueue(tx, "billing.hold_ended", {"n": str(i)})
            committed[str(i)] = done = time.perf_counter()
            enqueue_ms.append((done - started) * 1000)
            await asyncio.sleep(args.interval)
        for _ in range(3000):
            if len(fast.arrived) == args.events:
                break
            await asyncio.sleep(0.01)
    finally:
        await sender.stop()
        for server in servers:
            await server.close()
    lat = [(fast.arrived[k] - committed[k]) * 1000 for k in committed if k in fast.arrived]
    label = f"with a receiver holding each request {args.slow_s:.0f} s" if slow else "alone"
    print(f"fast endpoint {label}: {len(lat)}/{args.events} delivered; commit-to-receipt "
          f"p50 {percentile(lat, 50):.1f} ms, p95 {percentile(lat, 95):.1f} ms, "
          f"max {max(lat):.1f} ms; enqueue transaction p50 {percentile(enqueue_ms, 50):.2f} ms, "
          f"p95 {percentile(enqueue_ms, 95):.2f} ms")  # fmt: skip


async def main(args: argparse.Namespace) -> None:
    pgdir = Path(tempfile.mkdtemp(prefix="cp-bench-pg-"))
    pg = start_embedded(pgdir / "data", cleanup_mode="delete")
    with psycopg.connect(pg.get_uri(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE bench")
    url = pg.get_uri(database="bench")
    await migrate(url)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        api_token=secrets.token_urlsafe(32),
        encryption_key=secrets.token_hex(32),
        jwt_secret=secrets.token_hex(32),
        database_url=url,
        webhook_poll_seconds=args.poll,
        webhook_timeout_s=max(args.slow_s + 5, 10),
        webhook_allow_private=True,  # the receivers listen on loopback
        log_level="WARNING",
    )
    sealer = Sealer.from_key(settings.encryption_key_bytes)
    db = await Database.connect(url, min_size=2, max_size=10, timeout=10)
    try:
        print(f"{args.events} events, {args.interval * 1000:.0f} ms apart, "
              f"WEBHOOK_POLL_SECONDS={args.poll}")  # fmt: skip
        await run(db, settings, sealer, args, slow=False)
        await run(db, settings, sealer, args, slow=True)
    finally:
        await db.close()
        del pg  # cleanup_mode="delete": stopped and removed with the handle


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.01)
    parser.add_argument("--poll", type=float, default=1.0)
    parser.add_argument("--slow-s", type=float, default=5.0)
    asyncio.run(main(parser.parse_args()))
