"""Proxmox's RRD archives (PVE 8, pve-cluster ``PVE::RRD``) and which one to read next.

Each archive has 70 points of one step: ``hour`` 1 min, ``day`` 30 min, ``week`` 3 h,
``month`` 12 h (``year``, 7 days a point, is not kept). We keep what Proxmox keeps: the
last 70 steps of each.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Timeframe = Literal["hour", "day", "week", "month"]


@dataclass(frozen=True)
class Archive:
    name: Timeframe
    step_s: int
    points: int = 70

    @property
    def span_s(self) -> int:
        """How far back the archive reaches, and how long we keep its points."""
        return self.step_s * self.points


# Finest first: the order a subject seen for the first time gets its archives in.
ARCHIVES: dict[str, Archive] = {
    a.name: a
    for a in (
        Archive("hour", 60),
        Archive("day", 60 * 30),
        Archive("week", 60 * 180),
        Archive("month", 60 * 720),
    )
}
TIMEFRAMES: tuple[Timeframe, ...] = tuple(a.name for a in ARCHIVES.values())


def next_archive(read_at: dict[str, datetime | None], now: datetime) -> Timeframe:
    """The archive to read in this interval's one call for a subject.

    An archive never read comes first (finest first, so a new tenant's hour graph fills
    at once). Otherwise the coarsest archive that has gained a point since it was read
    (its step has passed), else ``hour``: the hour archive covers 70 minutes, so skipping
    it for one interval when a coarser one is due loses nothing.
    """
    for name in TIMEFRAMES:
        if read_at.get(name) is None:
            return name
    for name in reversed(TIMEFRAMES):
        last = read_at[name]
        assert last is not None
        if (now - last).total_seconds() >= ARCHIVES[name].step_s:
            return name
    return "hour"
