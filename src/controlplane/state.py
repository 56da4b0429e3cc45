"""What the composition root builds once per process and the request handlers share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from controlplane.audit.writer import AuditLog
from controlplane.config import Settings
from controlplane.crypto import Sealer
from controlplane.db import Database


@dataclass
class AppState:
    settings: Settings
    db: Database
    sealer: Sealer
    audit: AuditLog
    # Filled by later wiring (Proxmox client registry, workers, integrations).
    extras: dict[str, Any] = field(default_factory=dict)
