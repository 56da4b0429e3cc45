"""Automatic repair: the project policy `on_container_stopped: restart`.

The status poller only records what it finds (`health` `container_stopped` or
`container_missing`). This round, every few seconds, starts a `repair` operation for each
such active tenant whose project asks for it; the operation's own compare-and-swap makes a
second replica's attempt a harmless 409. At most one repair per tenant per `quiet`
seconds, so a container that keeps dying is flagged rather than restarted in a loop.
"""

from __future__ import annotations

import logging

from controlplane.audit.context import AuditContext
from controlplane.audit.writer import AuditLog
from controlplane.config import Settings
from controlplane.db import Database, load_queries
from controlplane.errors import DomainError
from controlplane.operations import usecases
from controlplane.periodic import Periodic

log = logging.getLogger(__name__)
Q = load_queries("controlplane.operations")
ACTOR = "system:repair"


class AutoRepair:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        audit: AuditLog,
        *,
        interval: float = 5.0,
        quiet: float = 300.0,
    ) -> None:
        self.db = db
        self.settings = settings
        self.audit = AuditContext(log=audit, actor=ACTOR)
        self.quiet = quiet
        self._periodic = Periodic("auto repair", self.round, interval)

    def start(self) -> None:
        self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()

    async def round(self) -> int:
        started = 0
        for row in await self.db.fetch_all(
            Q["repair_candidates"], {"quiet": self.quiet, "limit": 50}
        ):
            try:
                await usecases.repair(self.db, self.settings, self.audit, row["id"])
            except DomainError as exc:  # taken meanwhile (another replica, a user's action)
                log.info(
                    "auto repair not started",
                    extra={"tenant": str(row["id"]), "reason": exc.message},
                )
                continue
            log.warning(
                "container stopped behind our back: repairing", extra={"tenant": str(row["id"])}
            )
            started += 1
        return started
