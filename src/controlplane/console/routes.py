"""HTTP and WebSocket for the console.

`POST /api/v1/user/tenants/{id}/console` (the owner) and `POST /api/v1/tenants/{id}/console`
(an admin) answer a ticket valid 30 s and the WebSocket URL on this origin;
`GET /api/v1/console/ws?ticket=...&cols=..&rows=..` upgrades, consuming the ticket.
Every refusal (unknown, used or expired ticket, the tenant no longer active or the user's,
the limits, a foreign Origin) is an HTTP answer in the API's error shape *instead of* the
upgrade (the ASGI WebSocket denial response), so a browser never gets a socket it may not
have.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from fastapi import APIRouter, Request, WebSocket
from pydantic import BaseModel, Field
from starlette.websockets import WebSocketDisconnect

from controlplane.auth.deps import UserActorDep, UserDep
from controlplane.config import Settings
from controlplane.console import service
from controlplane.console.bridge import MAX_COLS, MAX_ROWS, Bridge, Counters, SshTerminal
from controlplane.db import Database
from controlplane.deps import Actor, AdminDep, AuditDep, Auditor, DbDep, SettingsDep
from controlplane.errors import Conflict
from controlplane.nodes.service import get_node, ssh_target_of
from controlplane.sshexec import SshError
from controlplane.state import Services
from controlplane.web.errors import REFUSALS, error_json, error_responses, http_of

log = logging.getLogger(__name__)

WS_PATH = "/api/v1/console/ws"
router = APIRouter(tags=["console"])


class ConsoleTicket(BaseModel):
    ticket: str = Field(description="Single use, valid `expires_in` seconds")
    ws_url: str = Field(description="Open a WebSocket here (the ticket is in the query)")
    ws_path: str = Field(description="The same, as a path on this origin")
    expires_in: int


def _ws_urls(request: Request, ticket: str) -> dict[str, str]:
    https = getattr(request.state, "https", request.url.scheme == "https")
    path = f"{WS_PATH}?ticket={ticket}"
    host = request.headers.get("host") or request.url.netloc
    return {"ws_url": f"{'wss' if https else 'ws'}://{host}{path}", "ws_path": path}


async def _ticket(
    request: Request,
    db: Database,
    settings: Settings,
    audit: Auditor,
    actor: Actor,
    tenant_id: UUID,
    user_id: UUID | None,
) -> dict[str, Any]:
    context = audit.context(actor)
    who = service.Who(context.actor, user_id, context.request.client_ip)
    issued = await service.issue_ticket(db, settings, context, tenant_id, who)
    return {
        "ticket": issued["ticket"],
        "expires_in": issued["expires_in"],
        **_ws_urls(request, issued["ticket"]),
    }


@router.post(
    "/api/v1/user/tenants/{tenant_id}/console",
    response_model=ConsoleTicket,
    responses=error_responses(401, 404, 409, 422),
)
async def user_console(
    tenant_id: UUID,
    request: Request,
    user: UserDep,
    actor: UserActorDep,
    db: DbDep,
    settings: SettingsDep,
    audit: AuditDep,
) -> dict[str, Any]:
    """A ticket for a console in your active tenant (a shell as root in the container)."""
    return await _ticket(request, db, settings, audit, actor, tenant_id, user["id"])


@router.post(
    "/api/v1/tenants/{tenant_id}/console",
    response_model=ConsoleTicket,
    responses=error_responses(401, 403, 404, 409, 422),
)
async def admin_console(
    tenant_id: UUID,
    request: Request,
    actor: AdminDep,
    db: DbDep,
    settings: SettingsDep,
    audit: AuditDep,
) -> dict[str, Any]:
    """A ticket for a console in any active tenant."""
    return await _ticket(request, db, settings, audit, actor, tenant_id, None)


def _allowed_origin(websocket: WebSocket, state: Services) -> bool:
    """A browser's Origin must be this host, the portal's or the dashboard's, or a CORS
    origin: a page elsewhere cannot hold a ticket, and this keeps it that way."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True  # not a browser
    settings = state.settings
    own = {f"{scheme}://{websocket.headers.get('host', '')}" for scheme in ("http", "https")}
    allowed = own | {_origin(settings.public_url), _origin(settings.admin_origin)}
    allowed |= set(settings.cors_origins)
    return origin.rstrip("/") in allowed


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _size(websocket: WebSocket, name: str, default: int, most: int) -> int:
    value = websocket.query_params.get(name, "")
    return min(int(value), most) if value.isdigit() and int(value) > 0 else default


async def _deny(websocket: WebSocket, status: int, message: str, code: str | None = None) -> None:
    await websocket.send_denial_response(error_json(status, message, code=code))


@router.websocket(WS_PATH)
async def console_socket(websocket: WebSocket) -> None:
    state: Services = websocket.app.state.cp
    if state.ssh is None:
        await _deny(websocket, 503, "consoles are not served by this process")
        return
    if not _allowed_origin(websocket, state):
        await _deny(websocket, 403, "this Origin may not open consoles")
        return
    ticket = websocket.query_params.get("ticket", "")
    if not 16 <= len(ticket) <= 128:
        await _deny(websocket, 401, "a console ticket is required (POST .../console)")
        return
    try:
        opened = await service.open_session(state.db, state.settings, state.audit, ticket)
    except REFUSALS as exc:
        status, code = http_of(exc)
        await _deny(websocket, status, getattr(exc, "message", str(exc)), code)
        return
    counters = Counters()
    reason = "ssh_failed"
    try:
        node = await get_node(state.db, opened.tenant["node_id"])
        target = ssh_target_of(state.sealer, node)
        if target is None or opened.tenant["vmid"] is None:
            raise Conflict("the tenant's node has no SSH access configured: no console")
        process = await state.ssh.open_pty(
            target,
            f"pct enter {int(opened.tenant['vmid'])}",
            cols=_size(websocket, "cols", 80, MAX_COLS),
            rows=_size(websocket, "rows", 24, MAX_ROWS),
        )
    except (*REFUSALS, SshError) as exc:
        await service.end_session(state.db, opened, reason=reason, bytes_in=0, bytes_out=0)
        if isinstance(exc, SshError):
            log.warning("console: SSH failed", extra={"tenant": str(opened.tenant["id"])})
            await _deny(websocket, 502, f"the node could not be reached over SSH: {exc}")
        else:
            status, code = http_of(exc)
            await _deny(websocket, status, exc.message, code)
        return
    try:
        await websocket.accept()
    except (WebSocketDisconnect, OSError):
        process.close()
        await service.end_session(state.db, opened, reason="closed", bytes_in=0, bytes_out=0)
        return

    async def renew(c: Counters) -> bool:
        return await service.renew_session(state.db, opened.session_id, c.bytes_in, c.bytes_out)

    bridge = Bridge(
        _Browser(websocket),
        SshTerminal(process),
        idle_timeout=state.settings.console_idle_timeout_s,
        on_tick=renew,
        tick_every=service.RENEW_EVERY,
    )
    counters = bridge.counters
    try:
        reason = await bridge.run()
    finally:
        with contextlib.suppress(Exception):
            await asyncio.shield(
                service.end_session(
                    state.db,
                    opened,
                    reason=reason,
                    bytes_in=counters.bytes_in,
                    bytes_out=counters.bytes_out,
                )
            )


class _Browser:
    """`bridge.Browser` over Starlette's WebSocket (a disconnect is a message, not raised)."""

    def __init__(self, websocket: WebSocket) -> None:
        self._ws = websocket

    async def receive(self) -> dict[str, Any]:
        return dict(await self._ws.receive())

    async def send_bytes(self, data: bytes) -> None:
        await self._ws.send_bytes(data)

    async def close(self, code: int, reason: str) -> None:
        await self._ws.close(code, reason)
