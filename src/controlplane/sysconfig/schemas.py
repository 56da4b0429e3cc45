"""The validated shape of each system setting."""

from __future__ import annotations

import re
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from controlplane.validation import DnsName, SingleLine, full_match

_HOST_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def _domain(value: str) -> str:
    value = value.strip().lower().rstrip(".")
    labels = value.split(".")
    if not value or len(value) > 253 or not all(full_match(_HOST_LABEL, label) for label in labels):
        raise ValueError(
            "must be a domain name such as apps.example.com: dot-separated labels of "
            "letters, digits and hyphens"
        )
    if labels[-1].isdigit():
        raise ValueError("must be a domain name, not an IP address")
    return value


Domain = Annotated[str, Field(min_length=1, max_length=253), SingleLine, AfterValidator(_domain)]


def _not_here(value: str | None) -> None:
    if value is not None:
        raise ValueError(
            "the base domain is BASE_DOMAIN in the environment, the one source of truth for "
            "routes, certificates and SSO; change it there and restart (the Caddy reconciler "
            "then re-routes every tenant)"
        )


Overcommit = Annotated[float, Field(ge=0.5, le=10.0, allow_inf_nan=False)]
PriceId = Annotated[str, Field(max_length=100, pattern=r"^price_[A-Za-z0-9_]+$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class BillingTier(_Strict):
    """One plan a user can subscribe to, and what it allows."""

    name: DnsName = Field(description="Short identifier, e.g. `basic`")
    label: Annotated[str, Field(min_length=1, max_length=60), SingleLine]
    max_tenants: Annotated[int, Field(ge=0, le=100_000)]
    max_ram_mb: Annotated[int, Field(ge=16, le=16_777_216)] = Field(
        description="RAM all of a user's tenants may use together"
    )
    price_cents: Annotated[int, Field(ge=0, le=100_000_000)] = 0
    stripe_price_id: PriceId | None = None
    max_snapshots: Annotated[int, Field(ge=0, le=10_000)] | None = Field(
        None, description="Snapshots of all of a user's tenants together; none: no cap"
    )
    max_backups: Annotated[int, Field(ge=0, le=10_000)] | None = Field(
        None, description="Backups of all of a user's tenants together; none: no cap"
    )
    max_disk_gb: Annotated[int, Field(ge=1, le=1_000_000)] | None = Field(
        None, description="Root disk of all of a user's tenants together; none: no cap"
    )


Tiers = Annotated[list[BillingTier], Field(max_length=20)]


def _unique_names(tiers: list[BillingTier]) -> list[BillingTier]:
    seen: set[str] = set()
    for tier in tiers:
        if tier.name in seen:
            raise ValueError(f"two tiers are named {tier.name!r}")
        seen.add(tier.name)
    return tiers


class SystemSettingsUpdate(_Strict):
    """A change to some settings; a key that is not given keeps its value.

    `default_project: null` leaves no project as the default. `base_domain` is not a system
    setting: `BASE_DOMAIN` in the environment is the one source of truth (Caddy's routes,
    `ask` and the SSO audience all use it), so a value here is refused, saying so; `null`
    is accepted and means nothing.
    """

    base_domain: Annotated[Domain | None, AfterValidator(_not_here)] = None
    default_project: UUID | None = None
    ram_overcommit: Overcommit | None = None
    billing_tiers: Tiers | None = None

    @field_validator("billing_tiers")
    @classmethod
    def _tiers(cls, value: list[BillingTier] | None) -> list[BillingTier] | None:
        return None if value is None else _unique_names(value)
