"""FastAPI dependencies: `Annotated` aliases for what handlers need.

Handlers take `db: DbDep`, `proxmox: ProxmoxDep`, `actor: AdminDep` and so on, one alias
per service; nothing here creates a resource, it only hands out the `Services` the
composition root built (`request.app.state.cp`). An integration that is not configured
comes as `None`.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from controlplane.audit.context import AuditContext, RequestMeta
from controlplane.audit.writer import AuditLog
from controlplane.auth.tokens import TokenError, decode_access_token
from controlplane.billing.stripe_api import StripeGateway
from controlplane.caddy.routes import CaddyRoutes
from controlplane.config import Settings
from controlplane.crypto import Sealer
from controlplane.db import Database
from controlplane.errors import Forbidden
from controlplane.metrics.registry import Metrics
from controlplane.nodes.registry import ProxmoxRegistry
from controlplane.nodes.service import NodeVerifier
from controlplane.provisioner.worker import Worker
from controlplane.sso.keys import SigningKeys
from controlplane.state import Services
from controlplane.web.errors import Challenge
from controlplane.wireguard.sync import PeerSyncer

_bearer = HTTPBearer(auto_error=False, description="The admin API token (API_TOKEN)")
WWW_AUTH = {"WWW-Authenticate": 'Bearer realm="controlplane"'}


async def get_state(request: Request) -> Services:
    state: Services = request.app.state.cp
    return state


StateDep = Annotated[Services, Depends(get_state)]


async def get_db(state: StateDep) -> Database:
    return state.db


async def get_settings(state: StateDep) -> Settings:
    return state.settings


async def get_sealer(state: StateDep) -> Sealer:
    return state.sealer


async def get_audit_log(state: StateDep) -> AuditLog:
    return state.audit


async def get_metrics(state: StateDep) -> Metrics:
    return state.metrics


async def get_signing_keys(state: StateDep) -> SigningKeys:
    return state.signing_keys


async def get_proxmox(state: StateDep) -> ProxmoxRegistry:
    return state.proxmox


async def get_node_verifier(state: StateDep) -> NodeVerifier:
    return state.node_verifier


async def get_route_hook(state: StateDep) -> CaddyRoutes | None:
    return state.route_hook


async def get_wireguard_sync(state: StateDep) -> PeerSyncer | None:
    return state.wireguard_sync


async def get_stripe_gateway(state: StateDep) -> StripeGateway | None:
    return state.stripe_gateway


async def get_worker(state: StateDep) -> Worker | None:
    return state.worker


DbDep = Annotated[Database, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
SealerDep = Annotated[Sealer, Depends(get_sealer)]
AuditLogDep = Annotated[AuditLog, Depends(get_audit_log)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
SigningKeysDep = Annotated[SigningKeys, Depends(get_signing_keys)]
ProxmoxDep = Annotated[ProxmoxRegistry, Depends(get_proxmox)]
NodeVerifierDep = Annotated[NodeVerifier, Depends(get_node_verifier)]
RouteHookDep = Annotated[CaddyRoutes | None, Depends(get_route_hook)]
WireGuardSyncDep = Annotated[PeerSyncer | None, Depends(get_wireguard_sync)]
StripeGatewayDep = Annotated[StripeGateway | None, Depends(get_stripe_gateway)]
WorkerDep = Annotated[Worker | None, Depends(get_worker)]


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
        raise Challenge("missing bearer token", headers=WWW_AUTH)
    if expected is None or not hmac.compare_digest(
        credentials.credentials.encode(), expected.get_secret_value().encode()
    ):
        if _is_user_token(state.settings, credentials.credentials):
            raise Forbidden("admin only")
        raise Challenge("invalid token", headers=WWW_AUTH)
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

    def context(self, actor: Actor) -> AuditContext:
        """What a service function takes to write its own entry for this request."""
        state, client = self._request.state, self._request.client
        meta = RequestMeta(
            client_ip=state.client_ip
            if hasattr(state, "client_ip")
            else (client.host if client else None),
            request_id=getattr(state, "request_id", None),
        )
        return AuditContext(self._audit, actor.audit_name, meta)

    def __call__(
        self,
        actor: Actor,
        action: str,
        target_type: str,
        target_id: object = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.context(actor).record(action, target_type, target_id, details)


async def get_auditor(state: StateDep, request: Request) -> Auditor:
    return Auditor(state.audit, request)


AuditDep = Annotated[Auditor, Depends(get_auditor)]
