"""Request and response bodies of the billing API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from controlplane.validation import DnsName


class CheckoutCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tier: DnsName = Field(description="The name of a billing tier, e.g. `basic`")


class CheckoutPublic(BaseModel):
    session_id: str
    url: str = Field(description="Send the user's browser here to pay")
    tier: str


class PortalPublic(BaseModel):
    url: str = Field(description="Stripe's customer portal for this user")


class TierPublic(BaseModel):
    name: str
    label: str
    max_tenants: int
    max_ram_mb: int
    price_cents: int
    purchasable: bool


class Usage(BaseModel):
    tenants: int = Field(description="Tenants that count: all but those being deleted")
    ram_mb: int


class Limits(BaseModel):
    max_tenants: int
    max_ram_mb: int


class SubscriptionPublic(BaseModel):
    id: str
    status: str = Field(description="Stripe's status: active, past_due, canceled, ...")
    paid: bool = Field(description="An invoice of it has been paid")
    current_period_end: datetime | None
    grace_until: datetime | None = Field(description="past_due: tenants suspended after this")


class BillingStatus(BaseModel):
    tier: TierPublic
    usage: Usage
    limits: Limits
    subscription: SubscriptionPublic | None
    on_hold: bool = Field(description="Billing has suspended this user's tenants")
    hold_reason: str | None
    tiers: list[TierPublic]


class WebhookResult(BaseModel):
    received: bool = True
    event_id: str
    type: str
    outcome: str = Field(description="applied, stale, duplicate, or ignored: <why>")
