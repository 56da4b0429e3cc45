"""Numbered `.sql` migrations shipped in the package, applied under an advisory lock.

Each applied file is recorded with its SHA-256. If a file that was applied has changed
since, start-up stops with a clear error instead of running against a schema that no longer
matches the code. Several replicas starting at once serialise on the advisory lock, and
each file runs in its own transaction together with its bookkeeping row.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources

import psycopg

log = logging.getLogger(__name__)

# An arbitrary constant that identifies "controlplane migrations" among advisory locks.
ADVISORY_LOCK_ID = 0x6370_6D69_6772  # "cpmigr"
_FILENAME = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")


class MigrationError(Exception):
    """The database cannot be migrated safely; the message says why."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available_migrations() -> list[Migration]:
    folder = resources.files("controlplane.db.migrations")
    found = []
    for entry in folder.iterdir():
        match = _FILENAME.fullmatch(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a number: {versions}")
    return found


async def migrate(url: str) -> list[str]:
    """Apply pending migrations; return the names applied now."""
    applied_now: list[str] = []
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_ID,))
        try:
            await conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       version integer PRIMARY KEY,
                       name text NOT NULL,
                       checksum text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            cur = await conn.execute("SELECT version, name, checksum FROM schema_migrations")
            done = {row[0]: (row[1], row[2]) for row in await cur.fetchall()}
            for migration in available_migrations():
                if migration.version in done:
                    _name, checksum = done[migration.version]
                    if checksum != migration.checksum:
                        raise MigrationError(
                            f"migration {migration.name} was changed after it was applied "
                            f"(recorded checksum {checksum[:12]}…, file now "
                            f"{migration.checksum[:12]}…); write a new migration instead"
                        )
                    continue
                async with conn.transaction():
                    await conn.execute(migration.sql)  # type: ignore[arg-type]
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum)"
                        " VALUES (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
                log.info("applied migration", extra={"migration": migration.name})
                applied_now.append(migration.name)
            unknown = set(done) - {m.version for m in available_migrations()}
            if unknown:
                raise MigrationError(
                    f"the database has migrations this code does not know: {sorted(unknown)}; "
                    "is an older version of the control plane running against a newer schema?"
                )
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_ID,))
    return applied_now
