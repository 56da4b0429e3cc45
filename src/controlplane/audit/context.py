"""What a service needs to write its own audit entry: who acts, and from which request.

A route builds one per request (`deps.Auditor.context(actor)`) and passes it to the service
function of its use case, which records the entry next to the change it made; the API, the
user API and the dashboard thus write the same entry for the same use case.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from controlplane.audit.writer import AuditEntry, AuditLog


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
