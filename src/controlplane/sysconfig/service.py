"""Read and change the system settings.

Other code reads them with `get_settings(db)` (every known setting, defaults filled in) or
`get_value(db, key, default)`. The known settings:

| key              | type                | default | stored in                       |
| ---------------- | ------------------- | ------- | ------------------------------- |
| `default_project`| UUID or None        | None    | projects.is_default (one truth) |
| `ram_overcommit` | float (0.5 - 10)    | 1.0     | system_settings                 |
| `billing_tiers`  | list of tier dicts  | []      | system_settings                 |

The base domain is not one of them: `BASE_DOMAIN` in the environment is its one source of
truth (an older version saved a `base_domain` row that nothing read; it is ignored).

The default project is not copied into `system_settings`: the projects table already says
which project is the default (`find_project` reads it), and two records of one fact drift.
Changing it goes through `controlplane.projects.service`.

Writers pass the `version` they read; a change made by someone else in between is refused
with a 409 instead of being silently overwritten.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from psycopg.types.json import Jsonb

from controlplane.db import Executor, load_queries
from controlplane.errors import Conflict, NotFound
from controlplane.projects import service as projects
from controlplane.projects.schemas import ProjectUpdate
from controlplane.sysconfig.schemas import SystemSettingsUpdate

_Q = load_queries("controlplane.sysconfig")

DEFAULTS: dict[str, Any] = {
    "default_project": None,
    "ram_overcommit": 1.0,
    "billing_tiers": [],
}
STORED = ("ram_overcommit", "billing_tiers")
_MISSING = object()


async def _default_project_id(db: Executor) -> uuid.UUID | None:
    try:
        row = await projects.find_project(db, None)
    except NotFound:
        return None
    return row["id"]  # type: ignore[no-any-return]


async def get_settings(db: Executor) -> dict[str, Any]:
    """Every known setting, with its default where none is stored."""
    rows = await db.fetch_all(_Q["settings_all"], {"keys": list(STORED)})
    values = dict(DEFAULTS)
    values.update({row["key"]: row["value"] for row in rows})
    values["ram_overcommit"] = float(values["ram_overcommit"])
    values["default_project"] = await _default_project_id(db)
    return values


async def get_value(db: Executor, key: str, default: Any = _MISSING) -> Any:
    """One setting: the stored value, else `default` (else the built-in default)."""
    found: Any
    if key == "default_project":
        found = await _default_project_id(db)
    else:
        row = await db.fetch_one(_Q["setting_get"], {"key": key})
        found = None if row is None else row["value"]
        if found is not None and key == "ram_overcommit":
            found = float(found)
    if found is not None:
        return found
    if default is not _MISSING:
        return default
    return DEFAULTS.get(key)


def version_of(values: dict[str, Any]) -> str:
    """A short fingerprint of the settings; changes whenever any of them changes."""
    text = json.dumps(values, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


async def update_settings(
    db: Executor, changes: SystemSettingsUpdate, *, expected_version: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Apply the keys set in `changes`; return (before, after).

    With `expected_version`, refuse (409) when the settings changed since they were read.
    """
    # Top-level keys the caller set; nested defaults (a tier's price) are filled in.
    dumped = changes.model_dump(mode="json")
    given = {key: dumped[key] for key in changes.model_fields_set}
    if "default_project" in given and changes.default_project is not None:
        await projects.get_project(db, changes.default_project)  # 404 names a missing one
    async with db.transaction() as tx:
        await tx.execute(_Q["settings_lock"])
        before = await get_settings(db)
        if expected_version is not None and expected_version != version_of(before):
            raise Conflict(
                "the settings were changed by someone else since you loaded them; "
                "reload and apply your change again",
                field="version",
            )
        for key in STORED:
            if key not in given:
                continue
            value = DEFAULTS[key] if given[key] is None else given[key]
            if value is None:
                await tx.execute(_Q["setting_delete"], {"key": key})
            else:
                # Kept as a row even at its default: SQL elsewhere may read it directly.
                await tx.execute(_Q["setting_upsert"], {"key": key, "value": Jsonb(value)})
        if "default_project" in given:
            await _set_default_project(db, changes.default_project, before["default_project"])
    return before, await get_settings(db)


async def _set_default_project(
    db: Executor, project_id: uuid.UUID | None, current: uuid.UUID | None
) -> None:
    if project_id == current:
        return
    if project_id is None:
        if current is not None:
            await projects.update_project(db, current, ProjectUpdate(is_default=False))
        return
    await projects.update_project(db, project_id, ProjectUpdate(is_default=True))
