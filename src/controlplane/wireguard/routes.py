"""HTTP for `/api/v1/wireguard/peers`: parse, call one service function, answer.

Admin token only. With WireGuard not enabled (`WG_HUB_PUBLIC_KEY` unset) every route answers
404 with the code `wireguard_disabled` (after the token check, so anonymous callers learn
nothing about the configuration).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Response

from controlplane.deps import Actor, AdminDep, AuditDep, StateDep
from controlplane.web.errors import error_responses
from controlplane.web.pagination import Page, PageDep
from controlplane.wireguard import service, usecases
from controlplane.wireguard.schemas import PeerCreate, PeerPublic, PeerUpdate

router = APIRouter(prefix="/api/v1/wireguard/peers", tags=["wireguard"])

NO_STORE = {"Cache-Control": "no-store"}


def require_wireguard(state: StateDep, actor: AdminDep) -> Actor:
    service.config_of(state.settings)
    return actor


WgAdminDep = Annotated[Actor, Depends(require_wireguard)]


def _filename(name: str, suffix: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:60] or "peer"
    return f"wg-{safe}.{suffix}"


@router.get("", response_model=Page[PeerPublic], responses=error_responses(401, 403, 404, 422))
async def list_peers(
    state: StateDep,
    _: WgAdminDep,
    page: PageDep,
    enabled: Annotated[bool | None, Query()] = None,
    tenant_id: Annotated[UUID | None, Query()] = None,
    user_id: Annotated[UUID | None, Query()] = None,
) -> dict[str, Any]:
    return await service.list_peers(
        state.db,
        state.settings,
        limit=page.limit,
        offset=page.offset,
        enabled=enabled,
        tenant_id=tenant_id,
        user_id=user_id,
    )


@router.post(
    "",
    status_code=201,
    response_model=PeerPublic,
    responses=error_responses(400, 401, 403, 404, 409, 422),
)
async def create_peer(
    body: PeerCreate, state: StateDep, actor: WgAdminDep, audit: AuditDep, response: Response
) -> dict[str, Any]:
    row = await usecases.create_peer(
        state.db, state.sealer, state.settings, audit.context(actor), body
    )
    response.headers["Location"] = f"/api/v1/wireguard/peers/{row['id']}"
    return row


@router.get("/{peer_id}", response_model=PeerPublic, responses=error_responses(401, 403, 404, 422))
async def get_peer(peer_id: UUID, state: StateDep, _: WgAdminDep) -> dict[str, Any]:
    return await service.get_peer(state.db, state.settings, peer_id)


@router.put(
    "/{peer_id}",
    response_model=PeerPublic,
    responses=error_responses(400, 401, 403, 404, 409, 422),
    summary="Update a peer's name, allowed IPs or notes",
)
async def update_peer(
    peer_id: UUID, body: PeerUpdate, state: StateDep, actor: WgAdminDep, audit: AuditDep
) -> dict[str, Any]:
    return await usecases.update_peer(state.db, state.settings, audit.context(actor), peer_id, body)


@router.delete("/{peer_id}", status_code=204, responses=error_responses(401, 403, 404, 422))
async def delete_peer(
    peer_id: UUID, state: StateDep, actor: WgAdminDep, audit: AuditDep
) -> Response:
    await usecases.delete_peer(state.db, state.settings, audit.context(actor), peer_id)
    return Response(status_code=204)


@router.post(
    "/{peer_id}/enable", response_model=PeerPublic, responses=error_responses(401, 403, 404, 422)
)
async def enable_peer(
    peer_id: UUID, state: StateDep, actor: WgAdminDep, audit: AuditDep
) -> dict[str, Any]:
    return await usecases.set_enabled(state.db, state.settings, audit.context(actor), peer_id, True)


@router.post(
    "/{peer_id}/disable", response_model=PeerPublic, responses=error_responses(401, 403, 404, 422)
)
async def disable_peer(
    peer_id: UUID, state: StateDep, actor: WgAdminDep, audit: AuditDep
) -> dict[str, Any]:
    return await usecases.set_enabled(
        state.db, state.settings, audit.context(actor), peer_id, False
    )


@router.get(
    "/{peer_id}/config",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "The peer's wg-quick file"},
        **error_responses(401, 403, 404, 409, 422),
    },
    summary="The peer's wg-quick config file (409 when the peer brought its own key)",
)
async def peer_config(
    peer_id: UUID, state: StateDep, actor: WgAdminDep, audit: AuditDep
) -> Response:
    text = await usecases.export_config(
        state.db, state.sealer, state.settings, audit.context(actor), peer_id
    )
    peer = await service.get_peer(state.db, state.settings, peer_id)
    return Response(
        text,
        media_type="text/plain; charset=utf-8",
        headers={
            **NO_STORE,
            "Content-Disposition": f'attachment; filename="{_filename(peer["name"], "conf")}"',
        },
    )


@router.get(
    "/{peer_id}/qr",
    response_class=Response,
    responses={
        200: {
            "content": {"image/png": {}, "image/svg+xml": {}},
            "description": "The config file as a QR code: PNG, or SVG on request",
        },
        **error_responses(401, 403, 404, 409, 422),
    },
    summary="The config file as a QR code (PNG; SVG with ?format=svg or Accept: image/svg+xml)",
)
async def peer_qr(
    peer_id: UUID,
    state: StateDep,
    actor: WgAdminDep,
    audit: AuditDep,
    format: Annotated[Literal["png", "svg"] | None, Query()] = None,
    scale: Annotated[int, Query(ge=1, le=20, description="Pixels per module")] = 4,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    kind: Literal["png", "svg"] = format or (
        "svg" if accept and "image/svg+xml" in accept.lower() else "png"
    )
    image = await usecases.export_qr(
        state.db,
        state.sealer,
        state.settings,
        audit.context(actor),
        peer_id,
        kind=kind,
        scale=scale,
    )
    return Response(
        image,
        media_type="image/svg+xml" if kind == "svg" else "image/png",
        headers={**NO_STORE, "Vary": "Accept"},
    )
