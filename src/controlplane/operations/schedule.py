"""When a schedule runs next, and which scheduled backups its retention keeps.

Retention follows Proxmox's prune rules (`keep-last`, `keep-daily`, `keep-weekly`): the
newest `keep_last` backups are kept; then, going back in time, the newest backup of each of
the last `keep_daily` days that have one, and of each of the last `keep_weekly` ISO weeks
that have one, among those not kept already. Everything else is pruned. Only scheduled
backups are pruned; a backup the user asked for stays until they delete it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, time, timedelta
from typing import Any


def next_run(now: datetime, frequency: str, at: time, weekday: int | None) -> datetime:
    """The first occurrence of the schedule strictly after `now` (UTC)."""
    now = now.astimezone(UTC)
    candidate = datetime.combine(now.date(), at.replace(tzinfo=None), tzinfo=UTC)
    if frequency == "weekly":
        assert weekday is not None
        candidate += timedelta(days=(weekday - candidate.weekday()) % 7)
        if candidate <= now:
            candidate += timedelta(days=7)
        return candidate
    if candidate <= now:
        candidate += timedelta(days=1)
    return candidate


def to_prune(
    backups: Sequence[dict[str, Any]], *, keep_last: int, keep_daily: int, keep_weekly: int
) -> list[dict[str, Any]]:
    """The scheduled, finished backups (with `id`, `created_at`) to delete, newest first.

    PVE's `prune_mark_backup_group`: each rule marks, newest first, one backup per bucket
    (day, ISO week) not covered by an earlier rule's keeps, up to its count; a second
    backup in a bucket this rule already took is marked for removal and no later rule
    looks at it again."""
    ordered = sorted(backups, key=lambda b: b["created_at"], reverse=True)
    mark: dict[Any, str] = {b["id"]: "keep" for b in ordered[:keep_last]}
    rules: list[tuple[int, Callable[[datetime], object]]] = [
        (keep_daily, lambda d: d.date()),
        (keep_weekly, lambda d: tuple(d.isocalendar())[:2]),
    ]
    for count, bucket_of in rules:
        buckets = {b["id"]: bucket_of(b["created_at"].astimezone(UTC)) for b in ordered}
        covered = {buckets[b["id"]] for b in ordered if mark.get(b["id"]) == "keep"}
        taken: set[object] = set()
        for backup in ordered:
            key = buckets[backup["id"]]
            if backup["id"] in mark or key in covered:
                continue
            if key in taken:
                mark[backup["id"]] = "remove"
                continue
            if len(taken) >= count:
                break
            taken.add(key)
            mark[backup["id"]] = "keep"
    return [b for b in ordered if mark.get(b["id"]) != "keep"]
