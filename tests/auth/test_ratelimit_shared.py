"""RATE_LIMIT_STORAGE: limits that every replica shares, so N replicas grant the limit once."""

from __future__ import annotations

import math
import subprocess
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from pydantic import ValidationError

from controlplane.web.ratestore import PostgresStore
from tests.conftest import make_settings
from tests.foundation.test_process_lifecycle import free_port
from tests.foundation.test_worker_process import _serve

LIMIT = 6


@pytest.fixture
def two_replicas(database_url: str) -> Iterator[tuple[str, str]]:
    """Two `serve` processes on one database, both counting in PostgreSQL."""
    procs: list[subprocess.Popen[bytes]] = []
    ports = [free_port(), free_port()]
    try:
        for port in ports:
            procs.append(
                _serve(
                    database_url,
                    port,
                    RUN_WORKERS="false",
                    RATE_LIMIT_STORAGE="postgresql",
                    RATE_LIMIT_API=f"{LIMIT}/minute",
                )
            )
        yield f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}"
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def test_two_serve_processes_grant_one_limit(two_replicas: tuple[str, str]) -> None:
    """Alternating between two replicas, the client still gets LIMIT requests a minute, not
    twice that; the refusal names when to retry."""
    codes = []
    for i in range(LIMIT + 2):
        # No token: 401, but the API limit counts every request under /api/ from an address.
        codes.append(httpx.get(f"{two_replicas[i % 2]}/api/v1/tenants").status_code)
    assert codes[:LIMIT] == [401] * LIMIT
    assert codes[LIMIT:] == [429, 429]
    r = httpx.get(f"{two_replicas[0]}/api/v1/tenants")
    assert r.status_code == 429
    # A sliding window: wait for the next minute, then until this minute's weighted share
    # leaves room for one more, at most 60 s x (1 - (LIMIT - 1) / LIMIT) later (70 s here).
    assert 1 <= int(r.headers["retry-after"]) <= 60 + math.ceil(60 * (1 - (LIMIT - 1) / LIMIT))
    assert r.json()["error"]["code"] == "rate_limited"
    # Paths outside /api/ are not limited.
    assert httpx.get(f"{two_replicas[1]}/healthz").status_code == 200


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[object]:
    from controlplane.db import Database

    database = await Database.connect(database_url, min_size=1, max_size=2)
    yield database
    await database.close()


async def test_the_postgresql_store_counts_per_bucket_and_client(db) -> None:  # type: ignore[no-untyped-def]
    import limits

    store = PostgresStore(lambda: db)
    item = limits.parse("3/minute")
    assert [await store.hit(item, "api", "198.51.100.1") for _ in range(3)] == [None] * 3
    refused = await store.hit(item, "api", "198.51.100.1")
    assert refused is not None and 1 <= refused <= 120
    # Another client, another bucket: their own counts; a refusal is not counted.
    assert await store.hit(item, "api", "198.51.100.2") is None
    assert await store.hit(item, "/api/v1/auth/login", "198.51.100.1") is None
    hits = await db.fetch_val("SELECT sum(hits) FROM rate_limit_windows")
    assert hits == 5


async def test_the_postgresql_store_lets_requests_through_while_the_database_is_away(
    db,  # type: ignore[no-untyped-def]
) -> None:
    from controlplane.db.gateway import Unavailable

    class Away:
        async def fetch_one(self, *args: object) -> None:
            raise Unavailable("gone")

    import limits

    store = PostgresStore(lambda: Away())  # type: ignore[arg-type, return-value]

    assert await store.hit(limits.parse("1/minute"), "api", "198.51.100.1") is None


def test_an_unknown_storage_is_refused_at_start(database_url: str) -> None:
    with pytest.raises(ValidationError, match="rate_limit_storage"):
        make_settings(database_url, rate_limit_storage="nosuch://x")
    # Redis through the limits package needs its client installed; the error says so.
    try:
        import coredis  # noqa: F401
    except ImportError:
        with pytest.raises(ValidationError, match="coredis"):
            make_settings(database_url, rate_limit_storage="redis://127.0.0.1:6379")
    assert make_settings(database_url, rate_limit_storage="postgresql").rate_limit_storage


def test_memory_is_the_default(database_url: str) -> None:
    assert make_settings(database_url).rate_limit_storage == "memory"
