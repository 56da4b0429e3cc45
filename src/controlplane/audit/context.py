"""What a service needs to write its own audit entry: who acts, and from which request.

A route builds one per request (`deps.Auditor.context(actor)`) and passes it to the service
function of its use case, which records the entry next to the change it made; the API, the
user API and the dashboard thus write the same entry for the same use case.

Two ways to record: `write(tx, ...)` inserts the entry in the change's own transaction, so
the two commit together or not at all and a kill -9 cannot lose it (the tenants' state
changes use it; `row(...)` gives the values for a statement that writes both at once);
`record(...)` queues it for the batch writer, which never waits for the database and loses
what is queued on SIGKILL (the rest).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb

from controlplane.audit.writer import AuditEntry, AuditLog, redact
from controlplane.db.gateway import Executor

INSERT_ONE = """
INSERT INTO audit_log (actor, action, target_type, target_id, details, client_ip, request_id)
VALUES (%(actor)s, %(action)s, %(target_type)s, %(target_id)s, %(details)s, %(client_ip)s,
        %(request_id)s)
"""


@dataclass(frozen=True)
class RequestMeta:
    """The request an action came from: the client's address and the request id."""

    client_ip: str | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class AuditContext:
    """The actor (its audit name: `admin-token`, `user:<id>`, `admin:<id>`) and the request."""

    log: AuditLog
    actor: str
    request: RequestMeta = RequestMeta()

    def record(
        self,
        action: str,
        target_type: str,
        target_id: object = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.log.record(
            AuditEntry(
                actor=self.actor,
                action=action,
                target_type=target_type,
                target_id=None if target_id is None else str(target_id),
                details=details or {},
                client_ip=self.request.client_ip,
                request_id=self.request.request_id,
            )
        )

    def row(
        self,
        action: str,
        target_type: str,
        target_id: object = None,
        details: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The entry as the parameters of an insert into `audit_log` (details redacted)."""
        return {
            "actor": self.actor,
            "action": action,
            "target_type": target_type,
            "target_id": None if target_id is None else str(target_id),
            "details": Jsonb(redact(details or {})),
            "client_ip": self.request.client_ip,
            "request_id": self.request.request_id,
        }

    async def write(
        self,
        tx: Executor,
        action: str,
        target_type: str,
        target_id: object = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Insert the entry through `tx`, the transaction of the change it records."""
        await tx.execute(INSERT_ONE, self.row(action, target_type, target_id, details))
