"""The settings use case the admin API and the dashboard share, with its audit entry."""

from __future__ import annotations

import json
from typing import Any

from controlplane.audit.context import AuditContext
from controlplane.db import Executor
from controlplane.sysconfig import service
from controlplane.sysconfig.schemas import SystemSettingsUpdate


async def update_settings(
    db: Executor,
    audit: AuditContext,
    changes: SystemSettingsUpdate,
    *,
    expected_version: str | None = None,
) -> dict[str, Any]:
    """Apply `changes` (409 when the settings moved on since `expected_version`); the
    entry lists each setting that changed, from and to. Returns the settings after."""
    before, after = await service.update_settings(db, changes, expected_version=expected_version)
    changed = {
        key: {"from": before[key], "to": after[key]}
        for key in after
        if before.get(key) != after[key]
    }
    if changed:
        details = json.loads(json.dumps({"changed": changed}, default=str))
        audit.record("settings.update", "system_settings", None, details)
    return after
