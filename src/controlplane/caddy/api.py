"""HTTP for `/api/v1/caddy`: the on-demand TLS `ask` endpoint Caddy calls.

Before Caddy obtains a certificate for a host name it has never seen, it asks
`GET /api/v1/caddy/ask?domain=<name>` and goes ahead only on a 200. We answer 200 only for
`{subdomain}.{BASE_DOMAIN}` of a live tenant (active, suspended, or on its way between the
two), so nobody can make Caddy request certificates for names that are not our tenants'.
No authentication: Caddy calls it, and it only says whether a public host name is served.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from controlplane.db import Database, load_queries
from controlplane.deps import DbDep, SettingsDep
from controlplane.errors import NotFound
from controlplane.tenants.hostnames import TenantHosts
from controlplane.web.errors import error_responses

router = APIRouter(prefix="/api/v1/caddy", tags=["caddy"])
_Q = load_queries("controlplane.caddy")
ASK_PATH = "/api/v1/caddy/ask"
# Caddy asks once per new host name, but a flood of random SNI names asks for each: answers
# are kept briefly (a tenant created a moment ago gets its certificate a few seconds later,
# one deleted keeps an approval as long), in a bounded cache per app.
ASK_CACHE_SECONDS = 5.0
ASK_CACHE_ENTRIES = 10_000


class AnswerCache:
    """A small TTL cache with a size bound (oldest entries go first)."""

    def __init__(
        self, *, max_entries: int, ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_entries = max_entries
        self.ttl = ttl
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bool]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> bool | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._entries[key]
            return None
        return entry[1]

    def put(self, key: str, value: bool) -> None:
        self._entries.pop(key, None)
        self._entries[key] = (self._clock() + self.ttl, value)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


def cache_of(app: Any) -> AnswerCache:
    """This app's cache of `ask` answers (each app, and each test's app, has its own)."""
    cache = getattr(app.state, "caddy_ask_cache", None)
    if cache is None:
        cache = AnswerCache(max_entries=ASK_CACHE_ENTRIES, ttl=ASK_CACHE_SECONDS)
        app.state.caddy_ask_cache = cache
    return cache


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
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    domain: Annotated[
        str, Query(min_length=1, max_length=253, description="The host name Caddy asks about")
    ],
) -> dict[str, Any]:
    name = domain.strip().rstrip(".").lower()
    cache = cache_of(request.app)
    allowed = cache.get(name)
    if allowed is None:
        allowed = await is_live_host(db, name, TenantHosts.from_settings(settings))
        cache.put(name, allowed)
    if not allowed:
        raise NotFound(f"{domain!r} is not the host name of a live tenant")
    return {"domain": domain.strip().rstrip(".").lower(), "allowed": True}
