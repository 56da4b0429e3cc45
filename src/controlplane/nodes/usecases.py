"""The node use cases the admin API and the dashboard share, each with its audit entry.

Secrets (the API token secret, the SSH key) never reach an entry: a change lists their
names under `changed`, not their values.
"""

from __future__ import annotations

import uuid
from typing import Any

from controlplane.audit.context import AuditContext
from controlplane.crypto import Sealer
from controlplane.db import Executor
from controlplane.nodes import service
from controlplane.nodes.registry import ProxmoxRegistry
from controlplane.nodes.schemas import NodeCreate, NodeMaintenance, NodeRepin, NodeUpdate
from controlplane.nodes.service import NodeVerifier

SECRETS = ("token_secret", "ssh_private_key")


async def create_node(
    db: Executor,
    sealer: Sealer,
    verifier: NodeVerifier | None,
    audit: AuditContext,
    data: NodeCreate,
) -> dict[str, Any]:
    """Register a node (checked first when a verifier is configured)."""
    row = await service.create_node(db, sealer, data, verifier)
    audit.record("node.create", "node", row["id"], data.model_dump(exclude=set(SECRETS)))
    return row


async def update_node(
    db: Executor,
    sealer: Sealer,
    verifier: NodeVerifier | None,
    registry: ProxmoxRegistry | None,
    audit: AuditContext,
    node_id: uuid.UUID,
    data: NodeUpdate,
) -> dict[str, Any]:
    """Change what `data` sets; the cached Proxmox client of the node is dropped."""
    row = await service.update_node(db, sealer, node_id, data, verifier)
    changed = data.model_dump(exclude_unset=True)
    audit.record(
        "node.update",
        "node",
        node_id,
        {"changed": sorted(changed)} | {k: v for k, v in changed.items() if k not in SECRETS},
    )
    if registry is not None:
        registry.forget(node_id)
    return row


async def delete_node(db: Executor, audit: AuditContext, node_id: uuid.UUID) -> None:
    await service.delete_node(db, node_id)
    audit.record("node.delete", "node", node_id)


async def set_maintenance(
    db: Executor, audit: AuditContext, node_id: uuid.UUID, data: NodeMaintenance
) -> dict[str, Any]:
    row = await service.set_maintenance(db, node_id, enabled=data.enabled, reason=data.reason)
    audit.record("node.maintenance", "node", node_id, data.model_dump())
    return row


async def repin(
    db: Executor, audit: AuditContext, node_id: uuid.UUID, data: NodeRepin
) -> dict[str, Any]:
    """Accept a changed certificate; the entry keeps the old and the new fingerprint."""
    async with db.transaction() as tx:
        old = (await service.get_node(tx, node_id))["tls_fingerprint"]
        row = await service.repin(tx, node_id, data.fingerprint)
        await audit.write(tx, "node.repin", "node", node_id, {"old": old, "new": data.fingerprint})
    return row
