"""Login attempts per client address, counted in PostgreSQL (so all replicas share them).

A client may start `max_failures * 5` login or setup ceremonies and fail `max_failures`
times per window; beyond that it gets 429 with `Retry-After` until the oldest attempt
leaves the window. A client is its address, or its /64 for IPv6 (as for the API's limits),
so rotating addresses inside one subscriber's block gains nothing. Wrong setup tokens are
also counted all together (`admin_setup_max_failures` per window, under the key
`SETUP_KEY`), so many addresses with a few guesses each cannot try many tokens.
"""

from __future__ import annotations

import random

from controlplane.config import Settings
from controlplane.db import Database, load_queries
from controlplane.web.errors import TooManyRequests
from controlplane.web.ratelimit import limit_key

_Q = load_queries("controlplane.admin")
STARTS_PER_FAILURE = 5
HOUSEKEEPING_CHANCE = 0.05
SETUP_KEY = "setup-token"  # not an address: the key wrong setup tokens are counted under


def _limited(retry_after: int | None) -> TooManyRequests:
    seconds = max(1, retry_after or 1)
    return TooManyRequests(
        f"too many login attempts from this address; try again in {seconds} s",
        headers={"Retry-After": str(seconds)},
    )


async def start(db: Database, settings: Settings, ip: str) -> None:
    """Count a ceremony that starts now, or raise 429 when this address is over a limit."""
    if random.random() < HOUSEKEEPING_CHANCE:
        await db.execute(_Q["housekeeping"])
    params = {
        "ip": limit_key(ip),
        "window": settings.admin_login_window_s,
        "max_failures": settings.admin_login_max_failures,
        "max_started": settings.admin_login_max_failures * STARTS_PER_FAILURE,
    }
    if await db.fetch_one(_Q["attempt_start"], params) is None:
        raise _limited(await db.fetch_val(_Q["attempt_retry_after"], params))


async def check(db: Database, settings: Settings, ip: str) -> None:
    """Raise 429 when this address has failed too often lately."""
    row = await db.fetch_one(
        _Q["attempt_failures"], {"ip": limit_key(ip), "window": settings.admin_login_window_s}
    )
    if row is not None and row["failures"] >= settings.admin_login_max_failures:
        raise _limited(row["retry_after"])


async def check_setup(db: Database, settings: Settings) -> None:
    """Raise 429 when wrong setup tokens, from all addresses together, reached the limit."""
    row = await db.fetch_one(
        _Q["attempt_failures"], {"ip": SETUP_KEY, "window": settings.admin_login_window_s}
    )
    if row is not None and row["failures"] >= settings.admin_setup_max_failures:
        seconds = max(1, row["retry_after"] or 1)
        raise TooManyRequests(
            f"too many wrong setup tokens lately (from all addresses); try again in {seconds} s",
            headers={"Retry-After": str(seconds)},
        )


async def record(db: Database, ip: str, *, ok: bool) -> None:
    outcome = "ok" if ok else "failed"
    await db.execute(_Q["attempt_record"], {"ip": limit_key(ip), "outcome": outcome})


async def record_wrong_setup_token(db: Database, ip: str) -> None:
    await record(db, ip, ok=False)
    await db.execute(_Q["attempt_record"], {"ip": SETUP_KEY, "outcome": "failed"})
