"""Status polling and usage collection at scale: Proxmox calls per period and the round's
time, 10,000 active tenants on 50 simulated nodes (issue 16 item 1, issue 15's graphs).

The simulated cluster runs in a process of its own (this script with `--serve-sim`), with
every container created directly in it, running. The control plane side is this process:
a real PostgreSQL (embedded), the tenants seeded in SQL, and the status poller's
`poll_once` with a Proxmox registry that counts every call. Four rounds:

1. first sight: every tenant never observed, every container running;
2. nothing changed since (the steady state);
3. `--changed` containers stopped behind the control plane's back (through the API);
4. the old way for comparison, measured in the same run: one `status/current` per tenant,
   20 at a time, as the poller did before;
5. one round of the usage collector (one rrddata call per tenant and per node, upserted),
   a second within the interval;
6. the collector's next interval (the day archive, read for the first time, 70 points).

Each round prints Proxmox calls by kind, wall time and this process's CPU time.

    .venv/bin/python bench/status_poll.py --tenants 10000 --nodes 50
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

TOKEN_ID, TOKEN_SECRET = "root@pam!bench", "bench-secret-0123456789"
VMID_BASE = 100_000


async def serve_sim(nodes: int, tenants: int) -> None:
    """The simulated cluster: `nodes` nodes, `tenants` running containers spread over them."""
    from controlplane.pvesim.app import create_app
    from controlplane.pvesim.auth import Token
    from controlplane.pvesim.models import Container
    from controlplane.pvesim.server import HttpServer
    from controlplane.pvesim.simulator import Simulator

    names = [f"pve{i + 1}" for i in range(nodes)]
    sim = Simulator(
        names,
        tokens=[Token(TOKEN_ID, TOKEN_SECRET, None)],
        node_memory_mb=10_000_000,
        task_durations={"vzstop": 0.01, "vzstart": 0.01},
    )
    now = time.time()
    for i in range(tenants):
        vmid = VMID_BASE + i
        sim.containers[vmid] = Container(
            vmid=vmid,
            node=names[i % nodes],
            config={"hostname": f"t{i}", "memory": 512, "cores": 1, "rootfs": "local-lvm:8"},
            status="running",
            started_at=now - 7200,  # two hours of usage history for rrddata
            created_at=now - 7200,
            runs=[[now - 7200, None]],
        )
    server = await HttpServer(create_app(sim)).start()
    print(server.url, flush=True)
    await asyncio.Event().wait()


class CallCounter:
    """The registry's observer: every Proxmox call, by kind."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def proxmox_call_ended(
        self, node: str, method: str, path: str, error: BaseException | None, seconds: float
    ) -> None:
        kind = "status/current" if path.endswith("/status/current") else path.rsplit("/", 1)[-1]
        if kind == "rrddata":
            kind = "lxc rrddata" if "/lxc/" in path else "node rrddata"
        self.calls[f"{method} {kind}"] += 1

    def take(self) -> dict[str, int]:
        taken = dict(self.calls)
        self.calls.clear()
        return taken


def seed(url: str, nodes: list[uuid.UUID], tenants: int) -> None:
    project = uuid.uuid4()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO projects (id, name, slug, template_vmid, ram_mb, cores, disk_gb, app_port)"
            " VALUES (%s, 'P', 'p', 9000, 512, 1, 8, 8080)",
            (project,),
        )
        conn.execute(
            "INSERT INTO tenants (id, name, subdomain, project_id, node_id, vmid, ram_mb, cores,"
            " ram_reserved, status)"
            " SELECT gen_random_uuid(), 't' || g, 't' || g, %s, (%s::uuid[])[1 + g %% %s],"
            " %s + g, 512, 1, true, 'active' FROM generate_series(0, %s - 1) g",
            (project, nodes, len(nodes), VMID_BASE, tenants),
        )
        conn.execute("VACUUM ANALYZE tenants")


async def measure(name: str, counter: CallCounter, run: Any) -> None:
    wall, cpu = time.perf_counter(), time.process_time()
    checked = await run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    calls = counter.take()
    print(
        f"{name:<34} tenants {checked:>6}  Proxmox calls {sum(calls.values()):>6} {calls}"
        f"  round {wall:6.2f} s  CPU {cpu:6.2f} s"
    )


async def main(args: argparse.Namespace) -> None:
    logging.disable(logging.WARNING)  # "tenant unhealthy" x --changed is expected here
    from controlplane.config import Settings
    from controlplane.crypto import Sealer
    from controlplane.db import Database
    from controlplane.db.embedded import start_embedded
    from controlplane.db.migrate import migrate
    from controlplane.nodes import service as nodes_service
    from controlplane.nodes.registry import ProxmoxRegistry
    from controlplane.nodes.schemas import NodeCreate
    from controlplane.provisioner.addresses import AddressPolicy
    from controlplane.provisioner.context import StepContext
    from controlplane.provisioner.status import poll_once
    from controlplane.usage.collector import UsageCollector

    sim_proc = subprocess.Popen(
        [sys.executable, __file__, "--serve-sim", "--nodes", str(args.nodes),
         "--tenants", str(args.tenants)],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    pgdir = Path(tempfile.mkdtemp(prefix="cp-bench-pg-"))
    pg = start_embedded(pgdir / "data", cleanup_mode="delete")
    try:
        with psycopg.connect(pg.get_uri(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE bench")
        url = pg.get_uri(database="bench")
        await migrate(url)
        assert sim_proc.stdout is not None
        sim_url = (await asyncio.to_thread(sim_proc.stdout.readline)).decode().strip()
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            api_token=secrets.token_urlsafe(32),
            encryption_key=secrets.token_hex(32),
            jwt_secret=secrets.token_hex(32),
            database_url=url,
            log_level="WARNING",
        )
        sealer = Sealer.from_key(settings.encryption_key_bytes)
        db = await Database.connect(url, min_size=2, max_size=20)
        node_ids = []
        for i in range(args.nodes):
            body = NodeCreate(
                name=f"pve{i + 1}", api_url=sim_url, pve_node=f"pve{i + 1}", token_id=TOKEN_ID,
                token_secret=TOKEN_SECRET, verify_tls=False, total_ram_mb=10_000_000,
                vmid_range_start=VMID_BASE, vmid_range_end=VMID_BASE + args.tenants,
            )  # fmt: skip
            node_ids.append((await nodes_service.create_node(db, sealer, body, None))["id"])
        await asyncio.to_thread(seed, url, node_ids, args.tenants)
        await db.execute("UPDATE nodes SET status = 'online'")  # what the node poller says
        counter = CallCounter()
        registry = ProxmoxRegistry(sealer, observer=counter)
        ctx = StepContext(
            db=db,
            registry=registry,
            sealer=sealer,
            owner="bench",
            addresses=AddressPolicy.from_settings(settings),
        )
        period = 30.0
        print(f"{args.tenants} active tenants on {args.nodes} simulated nodes, period {period} s")

        async def due() -> None:
            await db.execute("UPDATE tenants SET observed_at = now() - interval '1 hour'")

        async with httpx.AsyncClient(timeout=5.0) as http:
            await measure(
                "1. first sight (all running)", counter, lambda: poll_once(ctx, http, period)
            )
            await measure(
                "   again within the period", counter, lambda: poll_once(ctx, http, period)
            )
            await due()
            await measure(
                "2. next period, nothing changed", counter, lambda: poll_once(ctx, http, period)
            )
            # Some containers stop behind the control plane's back.
            node_rows = {n["id"]: n for n in await db.fetch_all("SELECT * FROM nodes")}
            victims = await db.fetch_all(
                "SELECT node_id, vmid FROM tenants ORDER BY vmid LIMIT %(n)s", {"n": args.changed}
            )
            sem = asyncio.Semaphore(20)

            async def stop(row: dict[str, Any]) -> None:
                async with sem:
                    node = node_rows[row["node_id"]]
                    client = registry.client(node)
                    await client.wait_task(await client.stop(node["pve_node"], row["vmid"]))

            await asyncio.gather(*(stop(v) for v in victims))
            counter.take()
            await due()
            await measure(
                f"3. next period, {args.changed} stopped",
                counter,
                lambda: poll_once(ctx, http, period),
            )
            tenants = await db.fetch_all("SELECT node_id, vmid FROM tenants")

            async def per_tenant() -> int:
                async def one(row: dict[str, Any]) -> None:
                    async with sem:
                        node = node_rows[row["node_id"]]
                        await registry.client(node).container_status(node["pve_node"], row["vmid"])

                await asyncio.gather(*(one(t) for t in tenants))
                return len(tenants)

            await measure("4. before: status/current each", counter, per_tenant)

        collector = UsageCollector(db, registry, interval=60.0)
        await measure("5. usage collector, first round", counter, collector.collect_once)
        await measure("   again within the interval", counter, collector.collect_once)
        points = await db.fetch_val("SELECT count(*) FROM tenant_usage")
        print(f"   tenant points stored: {points}")
        await db.execute("UPDATE usage_sources SET claimed_at = now() - interval '2 minutes'")
        await measure("6. usage collector, next interval", counter, collector.collect_once)
        await registry.close()
        await db.close()
    finally:
        sim_proc.kill()
        sim_proc.wait()
        del pg  # cleanup_mode="delete": stopped and removed at exit


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--changed", type=int, default=100, help="containers stopped in round 3")
    parser.add_argument("--serve-sim", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_sim:
        asyncio.run(serve_sim(args.nodes, args.tenants))
    else:
        asyncio.run(main(args))
