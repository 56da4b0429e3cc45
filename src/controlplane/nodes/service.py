"""Rules for registering, changing and removing Proxmox nodes.

Secrets (`token_secret`, `ssh_private_key`) are sealed with the row's id as associated data
before they reach SQL, and never leave this module in clear except to the Proxmox client.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from controlplane.crypto import Sealer
from controlplane.db import ConstraintViolation, Executor, load_queries
from controlplane.errors import Conflict, Invalid, NotFound
from controlplane.nodes.schemas import NodeCreate, NodeUpdate
from controlplane.sshexec.pool import SshTarget

_Q = load_queries("controlplane.nodes")


@dataclass(frozen=True)
class NodeFacts:
    """What a credential check learned from Proxmox about a node."""

    total_ram_mb: int
    mem_used_mb: int | None
    pve_version: str | None
    templates: list[int]


@dataclass(frozen=True)
class NodeAccess:
    """Everything needed to talk to one node's Proxmox API."""

    api_url: str
    pve_node: str
    token_id: str
    token_secret: str
    verify_tls: bool
    tls_fingerprint: str | None
    # SSH for bootstrap commands: registration connects and compares the pinned host key.
    ssh_host: str | None = None
    ssh_port: int = 22
    ssh_host_key: str | None = None


# Checks credentials against Proxmox; raises an ApiError (4xx) that says what is wrong.
NodeVerifier = Callable[[NodeAccess], Awaitable[NodeFacts]]


def public(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if not k.endswith("_sealed")}
    out["has_ssh_key"] = row.get("ssh_private_key_sealed") is not None
    return out


def _seal(sealer: Sealer, column: str, node_id: uuid.UUID, value: str | None) -> str | None:
    if value is None:
        return None
    return sealer.seal(value, table="nodes", column=column, row_id=node_id)


def open_token(sealer: Sealer, row: dict[str, Any]) -> str:
    return sealer.open(
        row["token_secret_sealed"], table="nodes", column="token_secret", row_id=row["id"]
    )


def access_of(sealer: Sealer, row: dict[str, Any]) -> NodeAccess:
    return NodeAccess(
        api_url=row["api_url"],
        pve_node=row["pve_node"],
        token_id=row["token_id"],
        token_secret=open_token(sealer, row),
        verify_tls=row["verify_tls"],
        tls_fingerprint=row["tls_fingerprint"],
        ssh_host=row.get("ssh_host"),
        ssh_port=row.get("ssh_port") or 22,
        ssh_host_key=row.get("ssh_host_key"),
    )


def ssh_target_of(sealer: Sealer, row: dict[str, Any]) -> SshTarget | None:
    """How to log into the node over SSH (its pinned host key), or None when it has no SSH
    key or host key: consoles and app commands need both."""
    if not row.get("ssh_private_key_sealed") or not row.get("ssh_host_key"):
        return None
    key = sealer.open(
        row["ssh_private_key_sealed"], table="nodes", column="ssh_private_key", row_id=row["id"]
    )
    host = row.get("ssh_host") or urlsplit(row["api_url"]).hostname or row["api_url"]
    return SshTarget(
        host=host,
        port=row["ssh_port"],
        username=row["ssh_user"],
        private_key_pem=key,
        known_host_key=row["ssh_host_key"],
    )


def _name_taken(exc: ConstraintViolation, name: str | None) -> Conflict:
    if exc.constraint == "nodes_name_key":
        return Conflict(f"a node named {name!r} already exists", field="name")
    return Conflict(f"conflicts with an existing node: {exc}")


async def get_node(db: Executor, node_id: uuid.UUID) -> dict[str, Any]:
    row = await db.fetch_one(_Q["node_get"], {"id": node_id})
    if row is None:
        raise NotFound(f"node {node_id} not found")
    return row


async def list_nodes(
    db: Executor, *, status: str | None, limit: int, offset: int
) -> dict[str, Any]:
    row = await db.fetch_one(_Q["node_page"], {"status": status, "limit": limit, "offset": offset})
    assert row is not None
    items = [public(item) for item in row["items"]]
    return {"items": items, "total": row["total"], "limit": limit, "offset": offset}


async def create_node(
    db: Executor, sealer: Sealer, data: NodeCreate, verifier: NodeVerifier | None
) -> dict[str, Any]:
    node_id = uuid.uuid4()
    facts: NodeFacts | None = None
    if verifier is not None:
        facts = await verifier(
            NodeAccess(
                api_url=data.api_url,
                pve_node=data.pve_node,
                token_id=data.token_id,
                token_secret=data.token_secret,
                verify_tls=data.verify_tls,
                tls_fingerprint=data.tls_fingerprint,
                ssh_host=data.ssh_host,
                ssh_port=data.ssh_port,
                ssh_host_key=data.ssh_host_key,
            )
        )
    total = data.total_ram_mb or (facts.total_ram_mb if facts else None)
    if total is None:
        raise Invalid(
            "total_ram_mb is required when the node cannot be asked", field="total_ram_mb"
        )
    params = {
        **data.model_dump(exclude={"token_secret", "ssh_private_key"}),
        "id": node_id,
        "total_ram_mb": total,
        "token_secret_sealed": _seal(sealer, "token_secret", node_id, data.token_secret),
        "ssh_private_key_sealed": _seal(sealer, "ssh_private_key", node_id, data.ssh_private_key),
        "status": "online" if facts else "unknown",
        "last_seen": datetime.now(UTC) if facts else None,
        "pve_version": facts.pve_version if facts else None,
        "mem_used_mb": facts.mem_used_mb if facts else None,
        "templates": facts.templates if facts else [],
    }
    try:
        row = await db.fetch_one(_Q["node_insert"], params)
    except ConstraintViolation as exc:
        raise _name_taken(exc, data.name) from None
    assert row is not None
    return row


async def update_node(
    db: Executor,
    sealer: Sealer,
    node_id: uuid.UUID,
    data: NodeUpdate,
    verifier: NodeVerifier | None,
) -> dict[str, Any]:
    current = await get_node(db, node_id)
    changes = data.model_dump(exclude_unset=True)
    start = changes.get("vmid_range_start", current["vmid_range_start"])
    end = changes.get("vmid_range_end", current["vmid_range_end"])
    if start is None or end is None or start > end:
        raise Invalid(
            "vmid_range_start must not be greater than vmid_range_end", field="vmid_range_start"
        )
    connection_fields = {
        "api_url",
        "pve_node",
        "token_id",
        "token_secret",
        "tls_fingerprint",
        "verify_tls",
        "ssh_host",
        "ssh_port",
        "ssh_host_key",
    }
    if verifier is not None and connection_fields & changes.keys():
        merged = access_of(sealer, current)
        await verifier(
            NodeAccess(
                api_url=changes.get("api_url") or merged.api_url,
                pve_node=changes.get("pve_node") or merged.pve_node,
                token_id=changes.get("token_id") or merged.token_id,
                token_secret=changes.get("token_secret") or merged.token_secret,
                verify_tls=merged.verify_tls
                if changes.get("verify_tls") is None
                else changes["verify_tls"],
                tls_fingerprint=changes.get("tls_fingerprint", merged.tls_fingerprint),
                ssh_host=changes.get("ssh_host", merged.ssh_host),
                ssh_port=changes.get("ssh_port") or merged.ssh_port,
                # SSH is checked again only when its settings change.
                ssh_host_key=changes.get("ssh_host_key", merged.ssh_host_key)
                if {"ssh_host", "ssh_port", "ssh_host_key"} & changes.keys()
                else None,
            )
        )
    params = {
        field: changes.get(field)
        for field in NodeUpdate.model_fields
        if field not in ("token_secret", "ssh_private_key")
    }
    params.update(
        id=node_id,
        set_fingerprint="tls_fingerprint" in changes,
        token_secret_sealed=_seal(sealer, "token_secret", node_id, changes.get("token_secret")),
        ssh_private_key_sealed=_seal(
            sealer, "ssh_private_key", node_id, changes.get("ssh_private_key")
        ),
    )
    try:
        row = await db.fetch_one(_Q["node_update"], params)
    except ConstraintViolation as exc:
        raise _name_taken(exc, changes.get("name")) from None
    if row is None:
        raise NotFound(f"node {node_id} not found")
    return row


async def delete_node(db: Executor, node_id: uuid.UUID) -> None:
    await get_node(db, node_id)
    async with db.transaction() as tx:
        # Lock the node first: a create that has reserved RAM on it but not committed holds
        # this lock, and the delete's own snapshot would not see its tenant. Once the lock
        # is ours, the next statement sees every committed placement, and later ones wait
        # for us and then find no node.
        if await tx.fetch_one(_Q["node_lock"], {"id": node_id}) is None:
            raise NotFound(f"node {node_id} not found")  # deleted by someone else meanwhile
        deleted = await tx.fetch_one(_Q["node_delete_if_empty"], {"id": node_id})
    if deleted is None:
        live = await db.fetch_val(_Q["node_live_tenants"], {"id": node_id})
        raise Conflict(f"node {node_id} still has {live} live tenant(s); delete or move them first")


async def set_maintenance(
    db: Executor, node_id: uuid.UUID, *, enabled: bool, reason: str | None
) -> dict[str, Any]:
    """Switch maintenance on or off (repeating it is harmless; the reason is replaced)."""
    row = await db.fetch_one(
        _Q["node_set_maintenance"], {"id": node_id, "enabled": enabled, "reason": reason}
    )
    if row is None:
        raise NotFound(f"node {node_id} not found")
    return row


async def repin(db: Executor, node_id: uuid.UUID, fingerprint: str) -> dict[str, Any]:
    """Pin the certificate the node presents now, if it is `fingerprint` (409 otherwise)."""
    row = await db.fetch_one(_Q["node_repin"], {"id": node_id, "fingerprint": fingerprint})
    if row is not None:
        return row
    current = await db.fetch_one(_Q["node_get"], {"id": node_id})
    if current is None:
        raise NotFound(f"node {node_id} not found")
    if current["presented_fingerprint"] is None:
        raise Conflict(f"node {current['name']} presents no new certificate", field="fingerprint")
    raise Conflict(
        f"node {current['name']} presents {current['presented_fingerprint']}, not the "
        "fingerprint given",
        field="fingerprint",
    )
