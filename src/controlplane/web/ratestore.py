"""Where the API's rate-limit counters live (RATE_LIMIT_STORAGE).

- `memory` (the default): this process's own moving windows. With N replicas a client gets
  up to N times the rate.
- `postgresql`: a sliding-window counter per client in the database every replica shares
  (`rate_limit_hit`, migration 0015), one statement per counted request. N replicas grant
  the limit once.
- any storage URI of the `limits` package, e.g. `redis://host:6379` (its async storage,
  moving windows; Redis needs `pip install 'controlplane[redis]'`), shared the same way.

A store answers one question per request: may this client spend one more, and if not, in
how many seconds.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Protocol

import limits
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from controlplane.db import Database
from controlplane.db.gateway import Unavailable

log = logging.getLogger(__name__)

MEMORY = "memory"
POSTGRESQL = "postgresql"

_HIT = "SELECT allowed, retry_after FROM rate_limit_hit(%(key)s, %(limit)s, %(window)s)"


class RateStore(Protocol):
    async def hit(self, item: limits.RateLimitItem, bucket: str, client: str) -> int | None:
        """None when allowed (and counted); else the seconds to wait (at least 1)."""
        ...


class LimitsStore:
    """The `limits` package's moving windows, in memory or in a storage it connects to."""

    def __init__(self, storage: Storage) -> None:
        self.limiter = MovingWindowRateLimiter(storage)

    async def hit(self, item: limits.RateLimitItem, bucket: str, client: str) -> int | None:
        if await self.limiter.hit(item, bucket, client):
            return None
        stats = await self.limiter.get_window_stats(item, bucket, client)
        return max(1, math.ceil(stats.reset_time - time.time()))


class PostgresStore:
    """Counters in PostgreSQL; `db` is resolved per call (the pool exists only once the
    app has started, after the middleware was built)."""

    def __init__(self, db: Callable[[], Database]) -> None:
        self._db = db

    async def hit(self, item: limits.RateLimitItem, bucket: str, client: str) -> int | None:
        try:
            row = await self._db().fetch_one(
                _HIT,
                {"key": f"{bucket}|{client}", "limit": item.amount, "window": item.get_expiry()},
            )
        except Unavailable:
            # Open, not closed: the request itself answers 503 if it needs the database,
            # and the routes that do not (health, the portal's files) keep working.
            log.warning("rate limits not counted: the database is unavailable")
            return None
        assert row is not None
        if row["allowed"]:
            return None
        return max(1, math.ceil(row["retry_after"]))


def limits_storage(uri: str) -> Storage:
    """The async storage of the `limits` package a URI names (redis://... -> async+redis)."""
    from limits.storage import storage_from_string

    scheme = uri if uri.startswith("async+") else f"async+{uri}"
    storage = storage_from_string(scheme)
    assert isinstance(storage, Storage)
    return storage


def rate_store(setting: str, db: Callable[[], Database]) -> RateStore:
    """The store RATE_LIMIT_STORAGE names (validated by the settings)."""
    if setting == MEMORY:
        return LimitsStore(MemoryStorage())
    if setting == POSTGRESQL:
        return PostgresStore(db)
    return LimitsStore(limits_storage(setting))
