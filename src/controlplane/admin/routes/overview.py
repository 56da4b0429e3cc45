"""The overview: tenants by status, node capacity, failing nodes, recent audit entries."""

from __future__ import annotations

from fastapi import Request, Response

from controlplane.admin import reads
from controlplane.admin.guard import CurrentAdmin
from controlplane.admin.web import render
from controlplane.deps import DbDep
from controlplane.sysconfig import service as sysconfig

STATUS_ORDER = (
    "provisioning",
    "active",
    "suspending",
    "suspended",
    "resuming",
    "error",
    "deleting",
    "deleted",
)


async def overview(request: Request, db: DbDep, _: CurrentAdmin) -> Response:
    counts = await reads.tenant_counts(db)
    nodes = await reads.nodes_overview(db)
    overcommit = float(await sysconfig.get_value(db, "ram_overcommit"))
    failing = [n for n in nodes if n["status"] == "offline" or n["last_error"]]
    audit = await reads.audit_page(db, limit=10)
    return render(
        request,
        "overview.html",
        {
            "nav": "overview",
            "counts": [(s, counts.get(s, 0)) for s in STATUS_ORDER],
            "live_total": sum(n for s, n in counts.items() if s != "deleted"),
            "nodes": nodes,
            "overcommit": overcommit,
            "failing": failing,
            "audit": audit["items"],
            "names": await reads.admin_names(db),
        },
        partial="partials/overview_body.html",
    )
