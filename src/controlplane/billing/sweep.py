"""The billing factories, and the periodic sweep that makes holds follow the clock.

A webhook applies its effects at once, but some changes need no event: a grace period runs
out, a tenant that was provisioning while its owner went on hold becomes active, a tenant
billing suspended finishes suspending after the payment came in. Every
`BILLING_SWEEP_SECONDS` the sweep finds the users whose tenants do not match their
standing (one query) and calls `holds.enforce` for each, under their billing lock. Running
it in several processes at once is harmless: every change is a compare-and-swap.
"""

from __future__ import annotations

import logging
import uuid

from controlplane.audit.writer import AuditEntry, AuditLog
from controlplane.billing.holds import Effects, enforce
from controlplane.billing.standing import grace_seconds
from controlplane.billing.stripe_api import StripeGateway
from controlplane.billing.tiers import load_tiers
from controlplane.config import Settings
from controlplane.db import Database, DatabaseError, Executor, load_queries
from controlplane.periodic import Periodic

log = logging.getLogger(__name__)
_Q = load_queries("controlplane.billing")
BATCH = 500
EVENT_RETENTION_DAYS = 90


async def sweep_once(
    db: Executor, settings: Settings, audit: AuditLog | None = None
) -> dict[uuid.UUID, Effects]:
    """One pass; returns what changed, per user. Also forgets event ids after 90 days."""
    free = (await load_tiers(db, settings)).free
    rows = await db.fetch_all(
        _Q["sweep_candidates"],
        {
            "grace_s": grace_seconds(settings),
            "limit": BATCH,
            "all": settings.billing_hold_policy == "all",
            "max_tenants": free.max_tenants,
            "max_ram": free.max_ram_mb,
        },
    )
    await db.execute(_Q["events_prune"], {"days": EVENT_RETENTION_DAYS})
    changed: dict[uuid.UUID, Effects] = {}
    for row in rows:
        user_id = row["user_id"]
        async with db.transaction() as tx:
            await tx.fetch_one(_Q["account_lock"], {"user_id": user_id})
            standing, effects = await enforce(tx, settings, user_id)
        if effects.hold_changed or effects.suspended or effects.resumed:
            changed[user_id] = effects
            if audit is not None:
                audit.record(
                    AuditEntry(
                        actor="billing",
                        action="billing.hold" if standing.hold else "billing.release",
                        target_type="user",
                        target_id=str(user_id),
                        details={"reason": standing.hold_reason, **effects.as_details()},
                    )
                )
    return changed


class Sweeper:
    def __init__(self, db: Database, settings: Settings, audit: AuditLog | None) -> None:
        self._db, self._settings, self._audit = db, settings, audit
        self._periodic = Periodic("billing-sweep", self._round, settings.billing_sweep_seconds)

    async def _round(self) -> None:
        try:
            await sweep_once(self._db, self._settings, self._audit)
        except (DatabaseError, OSError) as exc:
            log.warning("billing sweep could not reach the database: %s", exc)

    def start(self) -> None:
        self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()


def stripe_gateway(settings: Settings, *, serve_api: bool) -> StripeGateway | None:
    """The Stripe client of a process that serves the API; None when billing is off
    (STRIPE_SECRET_KEY + STRIPE_WEBHOOK_SECRET enable it)."""
    if not settings.billing_enabled:
        return None
    log.info("billing enabled", extra={"api_base": settings.stripe_api_base})
    return StripeGateway.from_settings(settings) if serve_api else None


def billing_sweeper(
    settings: Settings, db: Database, audit: AuditLog | None, *, serve_api: bool
) -> Sweeper | None:
    """The sweep (not started yet), in a process that runs the workers; else None."""
    if not settings.billing_enabled or (serve_api and not settings.run_workers):
        return None
    return Sweeper(db, settings, audit)
