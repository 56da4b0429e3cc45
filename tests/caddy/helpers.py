"""Rows for the Caddy tests: a project per app port and tenants in a given status."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from controlplane.db import Database

_addresses = itertools.count()


async def add_tenant(
    db: Database,
    subdomain: str,
    status: str,
    *,
    ip: str | None = "",
    app_port: int = 8080,
) -> uuid.UUID:
    """A tenant row; `ip` "" (the default) gives it an address of its own, None none."""
    project_id, tenant_id = uuid.uuid4(), uuid.uuid4()
    if ip == "":
        n = next(_addresses)
        ip = f"127.100.{1 + n // 250}.{1 + n % 250}"
    await db.execute(
        "INSERT INTO projects (id, name, slug, template_vmid, ram_mb, cores, disk_gb, app_port)"
        " VALUES (%(id)s, %(slug)s, %(slug)s, 9000, 512, 1, 4, %(port)s)",
        {"id": project_id, "slug": f"p-{subdomain}", "port": app_port},
    )
    await db.execute(
        "INSERT INTO tenants (id, name, subdomain, project_id, ram_mb, cores, status, ip_address)"
        " VALUES (%(id)s, %(sub)s, %(sub)s, %(project)s, 512, 1, %(status)s, %(ip)s)",
        {"id": tenant_id, "sub": subdomain, "project": project_id, "status": status, "ip": ip},
    )
    return tenant_id


async def set_status(db: Database, tenant_id: uuid.UUID, status: str) -> None:
    await db.execute(
        "UPDATE tenants SET status = %(status)s WHERE id = %(id)s",
        {"id": tenant_id, "status": status},
    )


async def eventually(check: Callable[[], Awaitable[Any]], *, timeout: float = 5.0) -> Any:
    """Poll `check` until it returns something truthy; fail with its last value."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last: {value!r})")
        await asyncio.sleep(0.05)
