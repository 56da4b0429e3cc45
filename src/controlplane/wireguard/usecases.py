"""The WireGuard peer use cases the admin API and the dashboard share, with their audit
entries. The entries never hold a private key: an export records only its format."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from controlplane.audit.context import AuditContext
from controlplane.config import Settings
from controlplane.crypto import Sealer
from controlplane.db import Executor
from controlplane.wireguard import service
from controlplane.wireguard.schemas import PeerCreate, PeerUpdate

TARGET = "wireguard_peer"


async def create_peer(
    db: Executor,
    sealer: Sealer,
    settings: Settings,
    audit: AuditContext,
    data: PeerCreate,
    *,
    record_key_generated: bool = True,
) -> dict[str, Any]:
    """Add a peer with the next free address (and a generated key pair without a public key).

    The dashboard's entries have never said whether the key was generated
    (`record_key_generated=False`)."""
    row = await service.create_peer(db, sealer, settings, data)
    details = data.model_dump(mode="json") | {"address": row["address"]}
    if record_key_generated:
        details["key_generated"] = data.public_key is None
    audit.record(f"{TARGET}.create", TARGET, row["id"], details)
    return row


async def update_peer(
    db: Executor, settings: Settings, audit: AuditContext, peer_id: uuid.UUID, data: PeerUpdate
) -> dict[str, Any]:
    row = await service.update_peer(db, settings, peer_id, data)
    audit.record(
        f"{TARGET}.update", TARGET, peer_id, data.model_dump(mode="json", exclude_unset=True)
    )
    return row


async def set_enabled(
    db: Executor, settings: Settings, audit: AuditContext, peer_id: uuid.UUID, enabled: bool
) -> dict[str, Any]:
    row = await service.set_enabled(db, settings, peer_id, enabled)
    audit.record(f"{TARGET}.{'enable' if enabled else 'disable'}", TARGET, peer_id)
    return row


async def delete_peer(
    db: Executor, settings: Settings, audit: AuditContext, peer_id: uuid.UUID
) -> dict[str, Any]:
    row = await service.delete_peer(db, settings, peer_id)
    audit.record(
        f"{TARGET}.delete",
        TARGET,
        peer_id,
        {"name": row["name"], "public_key": row["public_key"], "address": row["address"]},
    )
    return row


async def export_config(
    db: Executor, sealer: Sealer, settings: Settings, audit: AuditContext, peer_id: uuid.UUID
) -> str:
    """The peer's wg-quick file (it holds the private key: recorded as an export)."""
    text = await service.render_config(db, sealer, settings, peer_id)
    audit.record(f"{TARGET}.export", TARGET, peer_id, {"format": "conf"})
    return text


async def export_qr(
    db: Executor,
    sealer: Sealer,
    settings: Settings,
    audit: AuditContext,
    peer_id: uuid.UUID,
    *,
    kind: Literal["svg", "png"],
    scale: int,
) -> bytes:
    """The wg-quick file as a QR code image."""
    image = await service.render_qr(db, sealer, settings, peer_id, kind=kind, scale=scale)
    audit.record(f"{TARGET}.export", TARGET, peer_id, {"format": f"qr-{kind}"})
    return image
