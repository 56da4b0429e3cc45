"""HTTP for `/api/v1/caddy`: the on-demand TLS `ask` endpoint Caddy calls.

Before Caddy obtains a certificate for a host name it has never seen, it asks
`GET /api/v1/caddy/ask?domain=<name>` and goes ahead only on a 200. We answer 200 only for
`{subdomain}.{BASE_DOMAIN}` of a live tenant (active, suspended, or on its way between the
two), so nobody can make Caddy request certificates for names that are not our tenants'.
No authentication: Caddy calls it, and it only says whether a public host name is served.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from controlplane.db import Database, load_queries
from controlplane.deps import DbDep, SettingsDep
from controlplane.tenants.hostnames import TenantHosts
from controlplane.web.errors import NotFound, error_responses

router = APIRouter(prefix="/api/v1/caddy", tags=["caddy"])
_Q = load_queries("controlplane.caddy")


class AskAnswer(BaseModel):
    domain: str
    allowed: bool


def subdomain_of(domain: str, base_domain: str) -> str | None:
    """`Acme.Example.com.` with base `example.com` -> `acme`; None when not one label under it
    or a built-in reserved name (the settings' names need `TenantHosts.subdomain_of`)."""
    return TenantHosts(base_domain=base_domain.strip(".").lower()).subdomain_of(domain)


async def is_live_host(db: Database, domain: str, hosts: TenantHosts) -> bool:
    """A live tenant's host, never a reserved or operator one (see tenants.hostnames)."""
    subdomain = hosts.subdomain_of(domain)
    if subdomain is None:
        return False
    return bool(await db.fetch_val(_Q["live_subdomain"], {"subdomain": subdomain}))


@router.get(
    "/ask",
    response_model=AskAnswer,
    responses=error_responses(404, 422),
    summary="On-demand TLS: may Caddy get a certificate for this host name?",
)
async def ask(
    db: DbDep,
    settings: SettingsDep,
    domain: Annotated[
        str, Query(min_length=1, max_length=253, description="The host name Caddy asks about")
    ],
) -> dict[str, Any]:
    if not await is_live_host(db, domain, TenantHosts.from_settings(settings)):
        raise NotFound(f"{domain!r} is not the host name of a live tenant")
    return {"domain": domain.strip().rstrip(".").lower(), "allowed": True}
