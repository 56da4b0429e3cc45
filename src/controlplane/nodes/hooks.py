"""Factories for Proxmox: the client registry (observed by the metrics) and the node poller."""

from __future__ import annotations

from controlplane.config import Settings
from controlplane.crypto import Sealer
from controlplane.db import Database
from controlplane.nodes.poller import poll_due_nodes
from controlplane.nodes.registry import NodeCallObserver, ProxmoxRegistry
from controlplane.periodic import Periodic


def proxmox_registry(sealer: Sealer, observer: NodeCallObserver | None) -> ProxmoxRegistry:
    return ProxmoxRegistry(sealer, observer=observer)


def node_poller(settings: Settings, db: Database, registry: ProxmoxRegistry) -> Periodic:
    """Not started yet. Every replica looks often (a fifth of the period, at most every
    second when short); the CAS on `polled_at` makes sure each node is polled once per
    period overall."""
    period = settings.node_poll_seconds
    return Periodic(
        "node-poller",
        lambda: poll_due_nodes(db, registry, period),
        min(period, 1.0) if period < 5 else period / 5,
    )
