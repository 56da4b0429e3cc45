"""Request and response bodies for `/api/v1/webhooks`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from controlplane.validation import SingleLine, Storable, full_match
from controlplane.webhooks.catalog import check_subscription


def _webhook_url(value: str) -> str:
    # Printable ASCII only (an IDN host goes in its xn-- form), so what is stored is what
    # is requested; no credentials in the URL (they would be shown in every listing).
    message = "must be an absolute http(s) URL such as https://hooks.example.com/cp"
    if not full_match(r"[\x21-\x7e]+", value):
        raise ValueError(message + " (printable ASCII, no spaces)")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValueError(message) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(message)
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry credentials; the signature authenticates deliveries")
    if parts.fragment:
        raise ValueError("must not have a #fragment (it is never sent)")
    return value


WebhookUrl = Annotated[str, Field(min_length=10, max_length=2000), AfterValidator(_webhook_url)]
EventName = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(check_subscription)]


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


Events = Annotated[list[EventName], Field(min_length=1, max_length=50), AfterValidator(_unique)]
Description = Annotated[str, Field(max_length=200), SingleLine, Storable]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class WebhookCreate(_Strict):
    url: WebhookUrl
    events: Events = Field(description="Event types, groups (`tenant.*`) or `*`")
    description: Description = ""
    enabled: bool = True


class WebhookUpdate(_Strict):
    url: WebhookUrl | None = None
    events: Events | None = None
    description: Description | None = None
    enabled: bool | None = None


class WebhookPublic(BaseModel):
    id: UUID
    url: str
    description: str
    events: list[str]
    enabled: bool
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookPublic):
    secret: str = Field(description="The signing secret, shown only in this answer")


class DeliveryPublic(BaseModel):
    id: int
    endpoint_id: UUID
    event_id: UUID
    event_type: str
    state: Literal["pending", "delivered", "failed"]
    redelivery_of: int | None
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None = Field(description="When the next attempt is due")
    last_attempt_at: datetime | None
    last_status: int | None = Field(description="HTTP status of the last attempt")
    last_error: str | None
    delivered_at: datetime | None
    failed_at: datetime | None
