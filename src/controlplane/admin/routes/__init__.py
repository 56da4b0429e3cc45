"""The dashboard's router: every page and endpoint under /admin, behind `guard`."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from controlplane.admin.guard import guard
from controlplane.admin.routes import (
    audit,
    auth,
    capacity,
    events,
    network,
    node_fleet,
    nodes,
    orphans,
    overview,
    projects,
    settings,
    tenant_app,
    tenant_lifecycle,
    tenants,
    users,
    webhooks,
)

router = APIRouter(prefix="/admin", dependencies=[Depends(guard)], include_in_schema=False)
# The overview is the prefix itself ("/admin"), which a sub-router cannot declare.
router.add_api_route("", overview.overview, methods=["GET"])
# The tenant sub-pages come before `tenants`, whose POST /tenants/{id}/{action} would take
# their paths.
for module in (
    auth,
    node_fleet,
    nodes,
    projects,
    tenant_app,
    tenant_lifecycle,
    tenants,
    audit,
    settings,
    network,
    events,
    users,
    orphans,
    capacity,
    webhooks,
):
    router.include_router(module.router)
