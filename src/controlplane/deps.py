"""FastAPI dependencies: `Annotated` aliases for what handlers need.

Handlers take `db: DbDep`, `actor: AdminDep` and so on; nothing here creates a resource, it
only hands out what the lifespan built (`request.app.state.cp`).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from controlplane.audit.writer import AuditEntry, AuditLog
from controlplane.auth.tokens import TokenError, decode_access_token
from controlplane.config import Settings
from controlplane.crypto import Sealer
from controlplane.db import Database
from controlplane.state import AppState
from controlplane.web.errors import Forbidden, Unauthorized

_bearer = HTTPBearer(auto_error=False, description="The admin API token (API_TOKEN)")
WWW_AUTH = {"WWW-Authenticate": 'Bearer realm="controlplane"'}


async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.cp
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def get_db(state: StateDep) -> Database:
    return state.db


async def get_settings(state: StateDep) -> Settings:
    return state.settings


async def get_sealer(state: StateDep) -> Sealer:
    return state.sealer


DbDep = Annotated[Database, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
SealerDep = Annotated[Sealer, Depends(get_sealer)]


@dataclass(frozen=True)
class Actor:
    """Who is acting: the admin token, a user, an admin dashboard session, or the system."""

    kind: str  # "admin" | "user" | "system"
    id: str | None = None
    label: str = "admin"

    @property
    def audit_name(self) -> str:
        return self.label if self.id is None else f"{self.kind}:{self.id}"


async def require_admin(
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Actor:
    expected = state.settings.api_token
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("missing bearer token", headers=WWW_AUTH)
    if expected is None or not hmac.compare_digest(
        credentials.credentials.encode(), expected.get_secret_value().encode()
    ):
        if _is_user_token(state.settings, credentials.credentials):
            raise Forbidden("admin only")
        raise Unauthorized("invalid token", headers=WWW_AUTH)
    return Actor(kind="admin", label="admin-token")


def _is_user_token(settings: Settings, token: str) -> bool:
    """A valid end-user access token: authenticated, but not as the admin."""
    try:
        decode_access_token(settings, token)
    except TokenError:
        return False
    return True


AdminDep = Annotated[Actor, Depends(require_admin)]


class Auditor:
    """Records audit entries stamped with the request's actor, address and id."""

    def __init__(self, audit: AuditLog, request: Request) -> None:
        self._audit = audit
        self._request = request

    def __call__(
        self,
        actor: Actor,
        action: str,
        target_type: str,
        target_id: object = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        client = self._request.client
        self._audit.record(
            AuditEntry(
                actor=actor.audit_name,
                action=action,
                target_type=target_type,
                target_id=None if target_id is None else str(target_id),
                details=details or {},
                client_ip=self._request.state.client_ip
                if hasattr(self._request.state, "client_ip")
                else (client.host if client else None),
                request_id=getattr(self._request.state, "request_id", None),
            )
        )


async def get_auditor(state: StateDep, request: Request) -> Auditor:
    return Auditor(state.audit, request)


AuditDep = Annotated[Auditor, Depends(get_auditor)]
