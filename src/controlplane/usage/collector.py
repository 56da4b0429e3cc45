"""The usage collector: each interval, one rrddata call per active tenant and per online node.

Proxmox answers one archive per call (70 points), so a subject's four archives are read in
turns (`archives.next_archive`): the hour archive nearly every interval, a coarser one
when it has gained a point. The points since the archive's last read (and a few before)
are upserted (reading a point twice is harmless), the archive trimmed to what Proxmox
keeps and marked read, in one statement.

Every replica runs the loop; the claim (a compare-and-swap on `usage_sources.claimed_at`)
gives each subject to one of them per interval. A process killed between the claim and the
write loses that subject's interval only: it is due again at the next.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from typing import Any

from controlplane.config import Settings
from controlplane.db import Database, load_queries
from controlplane.nodes.registry import ProxmoxRegistry
from controlplane.periodic import Periodic
from controlplane.usage.archives import ARCHIVES, TIMEFRAMES, next_archive

log = logging.getLogger(__name__)
_Q = load_queries("controlplane.usage")

TENANT_SOURCES: tuple[str, ...] = (
    "cpu",
    "maxcpu",
    "mem",
    "maxmem",
    "netin",
    "netout",
    "diskread",
    "diskwrite",
)
NODE_SOURCES: tuple[str, ...] = (
    "cpu", "maxcpu", "loadavg", "iowait", "memused", "memtotal", "swapused", "swaptotal",
    "rootused", "roottotal", "netin", "netout",
)  # fmt: skip
CONCURRENCY = 20  # rrddata calls in flight per process
CLAIM_LIMIT = 500  # subjects claimed per batch and kind
OVERLAP_STEPS = 5  # points re-stored before the last read (the newest may have been partial)


def _columns(points: Sequence[dict[str, Any]], sources: Sequence[str]) -> dict[str, list[Any]]:
    """The points that have data, as one array per data source (None where one is absent)."""
    kept = [p for p in points if len(p) > 1]  # a point with only `time`: no data yet
    columns: dict[str, list[Any]] = {"time": [int(p["time"]) for p in kept]}
    for key in sources:
        columns[key] = [p.get(key) for p in kept]
    return columns


class UsageCollector:
    def __init__(
        self,
        db: Database,
        registry: ProxmoxRegistry,
        *,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.registry = registry
        self.interval = interval
        self._clock = clock
        self._pruned_at = float("-inf")
        self._sem = asyncio.Semaphore(CONCURRENCY)

    async def collect_once(self) -> int:
        """One round: claim what is due, a batch at a time until nothing is, read one
        archive of each, prune now and then. Returns how many subjects were read."""
        done = 0
        deadline = self._clock() + self.interval  # a round slower than that ends; the next goes on
        while True:
            read, claimed = await self._batch()
            done += read
            if claimed < CLAIM_LIMIT or self._clock() >= deadline:
                break
        if self._clock() - self._pruned_at >= max(self.interval, 60.0):
            await self.prune()
        return done

    async def _batch(self) -> tuple[int, int]:
        tenants = await self.db.fetch_all(
            _Q["usage_claim_tenants"], {"interval": self.interval, "limit": CLAIM_LIMIT}
        )
        nodes_due = await self.db.fetch_all(
            _Q["usage_claim_nodes"], {"interval": self.interval, "limit": CLAIM_LIMIT}
        )
        ids = {r["node_id"] for r in tenants} | {r["node_id"] for r in nodes_due}
        nodes = {n["id"]: n for n in await self.db.fetch_all(_Q["usage_nodes"], {"ids": list(ids)})}
        jobs: list[Coroutine[Any, Any, bool]] = [
            self._one("tenant", row, nodes.get(row["node_id"])) for row in tenants
        ] + [self._one("node", row, nodes.get(row["node_id"])) for row in nodes_due]
        return sum(await asyncio.gather(*jobs)), max(len(tenants), len(nodes_due))

    async def prune(self) -> dict[str, int]:
        self._pruned_at = self._clock()
        row = await self.db.fetch_one(
            _Q["usage_prune"],
            {
                "timeframes": list(TIMEFRAMES),
                "keep": [float(ARCHIVES[t].span_s) for t in TIMEFRAMES],
            },
        )
        assert row is not None
        return {"points": int(row["points"]), "sources": int(row["sources"])}

    async def _one(self, kind: str, row: dict[str, Any], node: dict[str, Any] | None) -> bool:
        if node is None:  # the node row went between the claim and now
            return False
        timeframe = next_archive({t: row[f"{t}_at"] for t in TIMEFRAMES}, datetime.now(UTC))
        try:
            async with self._sem:
                client = self.registry.client(node)
                if kind == "tenant":
                    points = await client.container_rrddata(
                        node["pve_node"], row["vmid"], timeframe
                    )
                else:
                    points = await client.node_rrddata(node["pve_node"], timeframe)
        except Exception as exc:
            log.warning(
                "usage read failed",
                extra={"kind": kind, "id": str(row["subject_id"]), "error": str(exc)[:200]},
            )
            return False
        last = row[f"{timeframe}_at"]
        if last is not None:
            # Consolidated points never change: store only those since the last read, with
            # a margin for the newest (it may have been partial) and for clock skew.
            since = last.timestamp() - OVERLAP_STEPS * ARCHIVES[timeframe].step_s
            points = [p for p in points if p["time"] >= since]
        await self.store(kind, row["subject_id"], timeframe, points)
        return True

    async def store(
        self, kind: str, subject_id: uuid.UUID, timeframe: str, points: Sequence[dict[str, Any]]
    ) -> None:
        if kind == "tenant":
            sources, query = TENANT_SOURCES, _Q["tenant_usage_store"]
        else:
            sources, query = NODE_SOURCES, _Q["node_usage_store"]
        params = {
            "id": subject_id,
            "timeframe": timeframe,
            "keep": ARCHIVES[timeframe].span_s,
            **_columns(points, sources),
        }
        await self.db.execute(query, params)


def usage_collector(settings: Settings, db: Database, registry: ProxmoxRegistry) -> Periodic:
    """Not started yet. Every replica looks a fifth of the interval; the claim makes sure
    each subject is read once per interval overall."""
    collector = UsageCollector(db, registry, interval=settings.usage_collect_seconds)
    return Periodic(
        "usage-collector", collector.collect_once, max(0.05, settings.usage_collect_seconds / 5)
    )
