"""Takes today's capacity sample every `CAPACITY_SAMPLE_SECONDS` (any replica may: the
day's row per node is an upsert)."""

from __future__ import annotations

from controlplane.capacity.service import take_sample
from controlplane.config import Settings
from controlplane.db import Database
from controlplane.periodic import Periodic


def capacity_sampler(settings: Settings, db: Database) -> Periodic:
    async def sample() -> None:
        await take_sample(db)

    return Periodic("capacity-sampler", sample, settings.capacity_sample_seconds)
