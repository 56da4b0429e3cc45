"""Request and response bodies for `/api/v1/wireguard/peers`. Private keys are never here."""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from controlplane.validation import Storable
from controlplane.wireguard.keys import check_key

MAX_ALLOWED_IPS = 64


def _network(value: str) -> str:
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        if "host bits set" in str(exc):
            fixed = ipaddress.ip_network(value, strict=False)
            raise ValueError(f"{value!r} has host bits set; did you mean {fixed}?") from None
        raise ValueError(f"{value!r} is not an IP network such as 192.168.10.0/24") from None
    return str(network)


def _unique(values: list[str]) -> list[str]:
    if len(set(values)) != len(values):
        raise ValueError("lists the same network twice")
    return values


def _printable(value: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("must not contain control characters (such as line breaks)")
    if value != value.strip():
        raise ValueError("must not start or end with spaces")
    return value


WgKey = Annotated[
    str,
    Field(min_length=44, max_length=44, description="base64 of a 32-byte X25519 key"),
    AfterValidator(check_key),
]
Network = Annotated[str, Field(min_length=2, max_length=49), AfterValidator(_network)]
Networks = Annotated[
    list[Network],
    Field(
        max_length=MAX_ALLOWED_IPS,
        description=(
            "Networks behind the peer that the hub routes to it, e.g. a LAN. The peer's own "
            "tunnel address is always included and may be listed; other addresses must lie "
            "outside WG_SUBNET and not overlap another peer's."
        ),
    ),
    AfterValidator(_unique),
]
PeerName = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_printable)]
Notes = Annotated[str, Field(max_length=2000), Storable]
# UUIDs arrive as JSON strings, which strict mode would refuse.
LaxUuid = Annotated[UUID, Field(strict=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class PeerCreate(_Strict):
    name: PeerName
    public_key: WgKey | None = Field(
        None,
        description=(
            "The peer's own public key. Omit it to have a key pair generated: then the "
            "config file and QR code can be downloaded (the private key is sealed at rest)."
        ),
    )
    allowed_ips: Networks = Field(default_factory=list)
    notes: Notes | None = None
    enabled: bool = True
    tenant_id: LaxUuid | None = Field(None, description="Link the peer to a tenant")
    user_id: LaxUuid | None = Field(None, description="Link the peer to a user")


class PeerUpdate(_Strict):
    name: PeerName | None = None
    allowed_ips: Networks | None = None
    notes: Notes | None = Field(None, description="null clears the notes")


class PeerPublic(BaseModel):
    id: UUID
    name: str
    public_key: str
    has_private_key: bool = Field(description="Whether the config file and QR code exist")
    address: str
    allowed_ips: list[str]
    enabled: bool
    notes: str | None
    tenant_id: UUID | None
    user_id: UUID | None
    created_at: datetime
    updated_at: datetime
