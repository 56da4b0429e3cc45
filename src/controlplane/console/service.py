"""Console tickets and sessions: the rules, in SQL.

A ticket is 32 random bytes given to the caller once and stored only as their SHA-256,
valid `TICKET_TTL` seconds. Opening the WebSocket consumes it by a compare-and-swap
(`used_at IS NULL AND expires_at > now()`), and in the same transaction the tenant is
checked again (still `active`, still the user's, the user not disabled) and the session
row is inserted under the session limits. The limits count sessions whose lease
(`alive_until`, renewed by the bridge) has not run out, so a replica killed with open
consoles does not hold the limits for ever: its sessions count again only until their
lease passes, and the next start on that tenant closes them as `lost`.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from controlplane.audit.context import AuditContext, RequestMeta
from controlplane.audit.writer import AuditLog
from controlplane.config import Settings
from controlplane.db import Executor, load_queries
from controlplane.errors import Conflict, NotFound, Unauthorized

_Q = load_queries("controlplane.console")

TICKET_TTL = 30  # seconds a ticket may wait for its WebSocket
SESSION_LEASE = 60  # seconds a session counts as open without a renewal
RENEW_EVERY = 20  # the bridge renews (and records the byte counts) this often


def token_hash(ticket: str) -> bytes:
    return hashlib.sha256(ticket.encode()).digest()


@dataclass(frozen=True)
class Who:
    """Who opens a console: the audit name, the user (None for an admin), the address."""

    actor: str
    user_id: uuid.UUID | None
    client_ip: str | None


async def console_tenant(
    db: Executor, tenant_id: uuid.UUID, user_id: uuid.UUID | None
) -> dict[str, Any]:
    """The tenant, which must be `active`; with `user_id` only that user's (404 otherwise)."""
    tenant = await db.fetch_one(_Q["console_tenant"], {"tenant_id": tenant_id, "user_id": user_id})
    if tenant is None:
        raise NotFound(f"tenant {tenant_id} not found")
    if tenant["status"] != "active":
        raise Conflict(f"tenant {tenant_id} is {tenant['status']}, not active: no console")
    if not tenant["has_ssh"] or tenant["vmid"] is None:
        raise Conflict("the tenant's node has no SSH access configured (key and host key)")
    return tenant


async def _check_limits(
    tx: Executor, settings: Settings, tenant_id: uuid.UUID, user_id: uuid.UUID | None
) -> None:
    counts = await tx.fetch_one(_Q["open_sessions"], {"tenant_id": tenant_id, "user_id": user_id})
    assert counts is not None
    if counts["on_tenant"] >= settings.console_max_per_tenant:
        raise Conflict(
            f"this tenant has {counts['on_tenant']} open consoles, the most allowed "
            f"(CONSOLE_MAX_PER_TENANT={settings.console_max_per_tenant}); close one first"
        )
    if user_id is not None and counts["of_user"] >= settings.console_max_per_user:
        raise Conflict(
            f"you have {counts['of_user']} open consoles, the most allowed "
            f"({settings.console_max_per_user}); close one first"
        )


async def issue_ticket(
    db: Executor, settings: Settings, audit: AuditContext, tenant_id: uuid.UUID, who: Who
) -> dict[str, Any]:
    """A single-use ticket for a console on an active tenant (409 when the limits are
    reached already, so the browser learns it before it tries)."""
    await console_tenant(db, tenant_id, who.user_id)
    await _check_limits(db, settings, tenant_id, who.user_id)
    ticket = secrets.token_urlsafe(32)
    row = await db.fetch_one(
        _Q["ticket_insert"],
        {
            "id": uuid.uuid4(),
            "token_hash": token_hash(ticket),
            "tenant_id": tenant_id,
            "actor": who.actor,
            "user_id": who.user_id,
            "client_ip": who.client_ip,
            "ttl": TICKET_TTL,
        },
    )
    assert row is not None
    await db.execute(_Q["tickets_prune"])
    audit.record("console.ticket", "tenant", tenant_id, {"ticket_id": str(row["id"])})
    return {"ticket": ticket, "ticket_id": row["id"], "expires_in": TICKET_TTL}


@dataclass(frozen=True)
class Opened:
    session_id: uuid.UUID
    tenant: dict[str, Any]
    user_id: uuid.UUID | None
    audit: AuditContext  # the ticket's actor, from the address that asked for it


async def open_session(db: Executor, settings: Settings, log: AuditLog, ticket: str) -> Opened:
    """Consume the ticket and record the session, or refuse (401 for a ticket that is
    unknown, used or expired; 404/409 as `console_tenant`; 409 over the limits)."""
    digest = token_hash(ticket)
    async with db.transaction() as tx:
        claimed = await tx.fetch_one(_Q["ticket_consume"], {"token_hash": digest})
        if claimed is None:
            state = await tx.fetch_one(_Q["ticket_state"], {"token_hash": digest})
            if state is None:
                raise Unauthorized("unknown console ticket")
            raise Unauthorized(
                "this console ticket was used already"
                if state["used"]
                else "console ticket expired"
            )
        tenant_id, user_id = claimed["tenant_id"], claimed["user_id"]
        tenant = await console_tenant(tx, tenant_id, user_id)
        await tx.execute(_Q["lock_tenant_consoles"], {"tenant_id": tenant_id})
        if user_id is not None:
            await tx.execute(_Q["lock_user_consoles"], {"user_id": user_id})
        for lost in await tx.fetch_all(_Q["sessions_close_dead"], {"tenant_id": tenant_id}):
            AuditContext(log, lost["actor"], RequestMeta(lost["client_ip"])).record(
                "console.end",
                "tenant",
                tenant_id,
                _end_details(lost["id"], lost, "lost", lost["bytes_in"], lost["bytes_out"]),
            )
        await _check_limits(tx, settings, tenant_id, user_id)
        session = await tx.fetch_one(
            _Q["session_insert"],
            {
                "id": uuid.uuid4(),
                "ticket_id": claimed["id"],
                "tenant_id": tenant_id,
                "actor": claimed["actor"],
                "user_id": user_id,
                "client_ip": claimed["client_ip"],
                "lease": SESSION_LEASE,
            },
        )
        assert session is not None
    audit = AuditContext(log, claimed["actor"], RequestMeta(claimed["client_ip"]))
    audit.record("console.start", "tenant", tenant_id, {"session_id": str(session["id"])})
    return Opened(session["id"], tenant, user_id, audit)


async def renew_session(db: Executor, session_id: uuid.UUID, bytes_in: int, bytes_out: int) -> bool:
    """Renew the lease; False when the session may no longer go on (the tenant is no longer
    active, or the user lost it or was disabled): the bridge then ends it."""
    row = await db.fetch_one(
        _Q["session_renew"],
        {"id": session_id, "lease": SESSION_LEASE, "bytes_in": bytes_in, "bytes_out": bytes_out},
    )
    return row is not None


async def end_session(
    db: Executor,
    opened: Opened,
    *,
    reason: str,
    bytes_in: int,
    bytes_out: int,
) -> None:
    """Close the session row once (a compare-and-swap on ended_at) and audit its end."""
    row = await db.fetch_one(
        _Q["session_end"],
        {"id": opened.session_id, "reason": reason, "bytes_in": bytes_in, "bytes_out": bytes_out},
    )
    if row is None:
        return
    opened.audit.record(
        "console.end",
        "tenant",
        opened.tenant["id"],
        _end_details(opened.session_id, row, reason, bytes_in, bytes_out),
    )


def _end_details(
    session_id: object, row: dict[str, Any], reason: str, bytes_in: int, bytes_out: int
) -> dict[str, Any]:
    return {
        "session_id": str(session_id),
        "started_at": row["started_at"].isoformat(),
        "ended_at": row["ended_at"].isoformat(),
        "reason": reason,
        "bytes_in": bytes_in,
        "bytes_out": bytes_out,
    }


async def list_sessions(
    db: Executor, tenant_id: uuid.UUID, limit: int = 20
) -> list[dict[str, Any]]:
    return await db.fetch_all(_Q["session_list"], {"tenant_id": tenant_id, "limit": limit})
