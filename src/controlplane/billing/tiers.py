"""Tier definitions: read from the system settings (`billing_tiers`), never hard-coded.

The operator edits the tiers on the dashboard's settings page (`controlplane.sysconfig`).
The tier named `free` is what a user without a paid subscription gets; when the operator
has not defined one, the free tier comes from `BILLING_FREE_MAX_TENANTS` and
`BILLING_FREE_MAX_RAM_MB`. Every other tier with a `stripe_price_id` can be bought.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from controlplane.config import Settings
from controlplane.db import Executor
from controlplane.sysconfig import service as sysconfig

FREE = "free"


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass(frozen=True)
class Tier:
    name: str
    label: str
    max_tenants: int
    max_ram_mb: int
    price_cents: int = 0
    stripe_price_id: str | None = None
    # The lifecycle's caps over all of a user's live tenants; None: no cap.
    max_snapshots: int | None = None
    max_backups: int | None = None
    max_disk_gb: int | None = None

    @classmethod
    def from_setting(cls, raw: dict[str, Any]) -> Tier:
        return cls(
            name=raw["name"],
            label=raw.get("label") or raw["name"],
            max_tenants=int(raw["max_tenants"]),
            max_ram_mb=int(raw["max_ram_mb"]),
            price_cents=int(raw.get("price_cents") or 0),
            stripe_price_id=raw.get("stripe_price_id"),
            max_snapshots=_optional_int(raw.get("max_snapshots")),
            max_backups=_optional_int(raw.get("max_backups")),
            max_disk_gb=_optional_int(raw.get("max_disk_gb")),
        )

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "max_tenants": self.max_tenants,
            "max_ram_mb": self.max_ram_mb,
            "price_cents": self.price_cents,
            "max_snapshots": self.max_snapshots,
            "max_backups": self.max_backups,
            "max_disk_gb": self.max_disk_gb,
            "purchasable": self.name != FREE and self.stripe_price_id is not None,
        }


@dataclass(frozen=True)
class Tiers:
    free: Tier
    all: tuple[Tier, ...]  # the free tier first, then the others in settings order

    def named(self, name: str) -> Tier | None:
        return next((t for t in self.all if t.name == name), None)

    def for_price(self, price_id: str | None) -> Tier | None:
        if price_id is None:
            return None
        return next((t for t in self.all if t.stripe_price_id == price_id), None)


def default_free(settings: Settings) -> Tier:
    return Tier(
        name=FREE,
        label="Free",
        max_tenants=settings.billing_free_max_tenants,
        max_ram_mb=settings.billing_free_max_ram_mb,
        max_snapshots=settings.billing_free_max_snapshots,
        max_backups=settings.billing_free_max_backups,
        max_disk_gb=settings.billing_free_max_disk_gb,
    )


def build_tiers(raw: list[dict[str, Any]], settings: Settings) -> Tiers:
    tiers = [Tier.from_setting(item) for item in raw or []]
    free = next((t for t in tiers if t.name == FREE), None) or default_free(settings)
    return Tiers(free=free, all=(free, *(t for t in tiers if t.name != FREE)))


async def load_tiers(db: Executor, settings: Settings) -> Tiers:
    """The tiers as the system settings define them now (one query)."""
    return build_tiers(await sysconfig.get_value(db, "billing_tiers", []), settings)
