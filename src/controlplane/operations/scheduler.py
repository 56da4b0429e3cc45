"""Scheduled backups and the sweep of expired ones: one round every `interval` seconds.

Each round claims due schedules with `FOR UPDATE SKIP LOCKED`, so with several replicas
each schedule is taken by one of them, and moves `next_run_at` to the next occurrence
after *now* in the same transaction that starts the backup: a control plane that was down
over several occurrences runs the missed backup once when it is back. A tenant busy with
another operation is asked again a few minutes later. The sweep deletes the archives of
backups whose deleted tenant's project kept them for `keep_backups_days`, archive first,
row after.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from controlplane.audit.context import AuditContext
from controlplane.audit.writer import AuditLog
from controlplane.config import Settings
from controlplane.db import load_queries
from controlplane.errors import DomainError
from controlplane.operations import usecases
from controlplane.operations.schedule import next_run
from controlplane.periodic import Periodic
from controlplane.provisioner.context import StepContext
from controlplane.provisioner.leftovers import delete_archive

log = logging.getLogger(__name__)
Q = load_queries("controlplane.operations")
BUSY_RETRY = timedelta(minutes=5)
ACTOR = "system:backup-schedule"


class BackupScheduler:
    def __init__(
        self,
        ctx: StepContext,
        settings: Settings,
        audit: AuditLog,
        *,
        interval: float = 30.0,
        batch: int = 50,
    ) -> None:
        self.ctx = ctx
        self.settings = settings
        self.audit = AuditContext(log=audit, actor=ACTOR)
        self.batch = batch
        self._periodic = Periodic("backup scheduler", self.round, interval)

    def start(self) -> None:
        self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()

    async def round(self) -> dict[str, int]:
        started, busy = await self.run_due()
        swept = await self.sweep_expired()
        return {"started": started, "busy": busy, "swept": swept}

    async def run_due(self, now: datetime | None = None) -> tuple[int, int]:
        started = busy = 0
        async with self.ctx.db.transaction() as tx:
            due = await tx.fetch_all(Q["schedules_due"], {"limit": self.batch})
            for schedule in due:
                clock = now or datetime.now(UTC)
                try:
                    await usecases.create_backup(
                        tx, self.settings, self.audit, schedule["tenant_id"], scheduled=True
                    )
                except DomainError as exc:
                    # Busy with another operation (or suspended mid-way): soon again.
                    busy += 1
                    log.info(
                        "scheduled backup postponed",
                        extra={"tenant": str(schedule["tenant_id"]), "reason": exc.message},
                    )
                    await tx.execute(
                        Q["schedule_postpone"],
                        {"tenant_id": schedule["tenant_id"], "at": clock + BUSY_RETRY},
                    )
                    continue
                started += 1
                await tx.execute(
                    Q["schedule_ran"],
                    {
                        "tenant_id": schedule["tenant_id"],
                        "next": next_run(
                            clock, schedule["frequency"], schedule["at_time"], schedule["weekday"]
                        ),
                    },
                )
        return started, busy

    async def sweep_expired(self) -> int:
        swept = 0
        rows = await self.ctx.db.fetch_all(Q["backups_expired"], {"limit": self.batch})
        for backup in rows:
            claimed = await self.ctx.db.fetch_one(Q["backup_expire_claim"], {"id": backup["id"]})
            if claimed is None:
                continue  # another replica has it
            try:
                await delete_archive(self.ctx, claimed, claimed.get("vmid"))
            except Exception as exc:
                log.warning(
                    "could not delete an expired backup; next round again",
                    extra={"backup": str(backup["id"]), "error": str(exc)},
                )
                continue
            await self.ctx.db.execute(Q["backup_remove"], {"id": backup["id"]})
            swept += 1
        return swept
