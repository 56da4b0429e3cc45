"""The user use cases the admin API and the dashboard share, each with its audit entry."""

from __future__ import annotations

import uuid
from typing import Any

from controlplane.audit.context import AuditContext
from controlplane.db import Executor
from controlplane.users import service


async def set_disabled(
    db: Executor, audit: AuditContext, user_id: uuid.UUID, disabled: bool
) -> dict[str, Any]:
    """Disable (every token stops working at once) or enable; repeating it is harmless."""
    row, changed = await service.set_disabled(db, user_id, disabled)
    audit.record("user.disable" if disabled else "user.enable", "user", user_id,
                 {"changed": changed})  # fmt: skip
    return row
