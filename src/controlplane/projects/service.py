"""Rules for project templates: unique slugs, at most one default, no deleting one in use."""

from __future__ import annotations

import uuid
from typing import Any

from psycopg.types.json import Jsonb

from controlplane.db import ConstraintViolation, Executor, load_queries
from controlplane.errors import Conflict, Invalid, NotFound
from controlplane.projects.schemas import ProjectCreate, ProjectUpdate

_Q = load_queries("controlplane.projects")


def _conflict(exc: ConstraintViolation, slug: str | None) -> Conflict:
    if exc.constraint == "projects_slug_key":
        return Conflict(f"a project with slug {slug!r} already exists", field="slug")
    if exc.constraint == "projects_one_default":
        return Conflict(
            "another project became the default at the same time; retry", field="is_default"
        )
    return Conflict(f"conflicts with an existing project: {exc}")


async def get_project(db: Executor, project_id: uuid.UUID) -> dict[str, Any]:
    row = await db.fetch_one(_Q["project_get"], {"id": project_id})
    if row is None:
        raise NotFound(f"project {project_id} not found")
    return row


async def find_project(db: Executor, slug: str | None) -> dict[str, Any]:
    """The project a user asked for by slug, or the default one."""
    if slug is not None:
        row = await db.fetch_one(_Q["project_by_slug"], {"slug": slug})
        if row is None:
            raise NotFound(f"no project with slug {slug!r}", field="project")
        return row
    row = await db.fetch_one(_Q["project_default"])
    if row is None:
        raise NotFound("no default project is configured; name one with `project`", field="project")
    return row


async def self_service_project(db: Executor, slug: str | None) -> dict[str, Any]:
    """The project a user asked for by slug, or the default one, if it is open to users.

    A project that exists but is not self-service gets the same 422 as one that does not
    exist, so users cannot learn the operator's project names. The default project is the
    one users get without naming one only when it is self-service itself.
    """
    if slug is not None:
        row = await db.fetch_one(_Q["project_self_service_by_slug"], {"slug": slug})
        if row is None:
            raise Invalid(f"no project with slug {slug!r} is open to users", field="project")
        return row
    row = await db.fetch_one(_Q["project_self_service_default"])
    if row is None:
        raise Invalid("no default project is open to users; name one with `project`",
                      field="project")  # fmt: skip
    return row


async def list_self_service(db: Executor) -> list[dict[str, Any]]:
    return await db.fetch_all(_Q["project_self_service_list"])


async def project_for_tenant(db: Executor, project_id: uuid.UUID | None) -> dict[str, Any]:
    """The project a new tenant asks for by id, or the default one; 404 names `project_id`."""
    try:
        if project_id is None:
            return await find_project(db, None)
        return await get_project(db, project_id)
    except NotFound as exc:
        raise NotFound(exc.message, field="project_id") from None


async def list_projects(db: Executor, *, limit: int, offset: int) -> dict[str, Any]:
    row = await db.fetch_one(_Q["project_page"], {"limit": limit, "offset": offset})
    assert row is not None
    return {"items": row["items"], "total": row["total"], "limit": limit, "offset": offset}


async def create_project(db: Executor, data: ProjectCreate) -> dict[str, Any]:
    project_id = uuid.uuid4()
    params = {
        **data.model_dump(),
        "id": project_id,
        "bootstrap_commands": Jsonb(data.bootstrap_commands),
        "app_actions": Jsonb([a.model_dump() for a in data.app_actions]),
    }
    try:
        async with db.transaction() as tx:
            if data.is_default:
                await tx.execute(_Q["project_clear_default"], {"id": project_id})
            row = await tx.fetch_one(_Q["project_insert"], params)
    except ConstraintViolation as exc:
        raise _conflict(exc, data.slug) from None
    assert row is not None
    return row


async def update_project(
    db: Executor, project_id: uuid.UUID, data: ProjectUpdate
) -> dict[str, Any]:
    changes = data.model_dump(exclude_unset=True)
    params: dict[str, Any] = {field: changes.get(field) for field in ProjectUpdate.model_fields}
    params["id"] = project_id
    params["set_health_path"] = "health_path" in changes
    params["set_app_service"] = "app_service" in changes
    if changes.get("app_actions") is not None:
        params["app_actions"] = Jsonb(changes["app_actions"])
    if changes.get("bootstrap_commands") is not None:
        params["bootstrap_commands"] = Jsonb(changes["bootstrap_commands"])
    try:
        async with db.transaction() as tx:
            if changes.get("is_default"):
                await tx.execute(_Q["project_clear_default"], {"id": project_id})
            row = await tx.fetch_one(_Q["project_update"], params)
            if row is None:
                raise NotFound(f"project {project_id} not found")
    except ConstraintViolation as exc:
        raise _conflict(exc, changes.get("slug")) from None
    return row


async def delete_project(db: Executor, project_id: uuid.UUID) -> None:
    await get_project(db, project_id)
    async with db.transaction() as tx:
        # A create in flight holds a key-share lock on the project (its tenant's foreign
        # key) that this lock waits for; the next statement then sees that tenant, which
        # the delete's own snapshot would not (and the foreign key would set it to NULL).
        if await tx.fetch_one(_Q["project_lock"], {"id": project_id}) is None:
            raise NotFound(f"project {project_id} not found")  # deleted by someone else meanwhile
        deleted = await tx.fetch_one(_Q["project_delete_if_unused"], {"id": project_id})
    if deleted is None:
        live = await db.fetch_val(_Q["project_live_tenants"], {"id": project_id})
        raise Conflict(f"project {project_id} is used by {live} live tenant(s)")
