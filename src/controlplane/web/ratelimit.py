"""Per-client-IP rate limits, in the spirit of Go's httprate.

The counters live where RATE_LIMIT_STORAGE says (`ratestore.py`): in this process's memory
by default (each replica counts on its own: with N replicas a client gets up to N times the
rate), or in PostgreSQL or a `limits` storage such as Redis, shared by every replica. A few
paths (sign-up, log-in, refresh, password change) get a tight limit each; everything else
under `/api/` shares a looser one. IPv6 clients are counted per /64, the block one
subscriber usually gets. Caddy's `ask` has its own, high limit (RATE_LIMIT_ASK) in its own
bucket. Over the limit: 429 in the common error shape, with `Retry-After`.

An in-memory store belongs to the middleware instance, so every app (and every test's app)
counts from zero. It needs `client_ip`, which `EdgeMiddleware` resolves first.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable, Mapping

import limits
from limits.aio.storage import MemoryStorage
from starlette.types import ASGIApp, Receive, Scope, Send

from controlplane.web.errors import error_json
from controlplane.web.ratestore import LimitsStore, RateStore


def limit_key(client_ip: str | None) -> str:
    """What one client is counted as: its address, or its /64 for IPv6."""
    if not client_ip:
        return "unknown"
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return client_ip
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class RateLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        tight: str,
        tight_paths: Iterable[str],
        api: str,
        api_prefix: str = "/api/",
        exempt_bearer: str | None = None,
        own_limits: Mapping[str, str] | None = None,
        store: RateStore | None = None,
    ) -> None:
        self.app = app
        # The operator's own automation (the admin token) is trusted and not throttled by
        # address; tight limits on the auth paths still apply to everyone.
        self.exempt = f"Bearer {exempt_bearer}".encode() if exempt_bearer else None
        self.tight = limits.parse(tight)
        self.tight_paths = frozenset(tight_paths)
        self.api = limits.parse(api)
        self.api_prefix = api_prefix
        # Paths with a limit (and a bucket) of their own, e.g. Caddy's on-demand TLS `ask`:
        # a burst of TLS handshakes must not spend the API limit of the address it comes from.
        self.own = {path: limits.parse(rate) for path, rate in (own_limits or {}).items()}
        self.store: RateStore = store or LimitsStore(MemoryStorage())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path in self.own:
            item, bucket = self.own[path], path
        elif path in self.tight_paths:
            item, bucket = self.tight, path
        elif path.startswith(self.api_prefix):
            if self.exempt is not None:
                presented = dict(scope["headers"]).get(b"authorization", b"")
                if hmac.compare_digest(presented, self.exempt):
                    await self.app(scope, receive, send)
                    return
            item, bucket = self.api, "api"
        else:
            await self.app(scope, receive, send)
            return
        client = limit_key(scope.get("state", {}).get("client_ip"))
        retry_after = await self.store.hit(item, bucket, client)
        if retry_after is None:
            await self.app(scope, receive, send)
            return
        response = error_json(
            429,
            f"too many requests from your address; retry in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )
        await response(scope, receive, send)
