"""Network: WireGuard peers (when WG_HUB_PUBLIC_KEY is set): list, add, edit, enable or
disable, delete, download the config file, show the QR code."""

from __future__ import annotations

import base64
import re
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request, Response

from controlplane.admin.forms import FormErrors, from_api_error, read_form, to_data, validate
from controlplane.admin.guard import CurrentAdmin, actor_of
from controlplane.admin.web import flash_error, redirect_after_change, render
from controlplane.deps import AuditDep, StateDep
from controlplane.errors import WireGuardDisabled
from controlplane.state import Services
from controlplane.web.errors import REFUSALS, status_of
from controlplane.wireguard import service, usecases
from controlplane.wireguard.schemas import PeerCreate, PeerUpdate

router = APIRouter()
NO_STORE = {"Cache-Control": "no-store"}


def _enabled(state: Services) -> bool:
    try:
        service.config_of(state.settings)
    except WireGuardDisabled:
        return False
    return True


def _filename(name: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:60] or "peer"
    return f"wg-{safe}.conf"


async def _page(
    request: Request,
    state: Services,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    if not _enabled(state):
        return render(request, "network.html", {"nav": "network", "enabled": False})
    page = await service.list_peers(state.db, state.settings, limit=200)
    cfg = service.config_of(state.settings)
    return render(
        request,
        "network.html",
        {
            "nav": "network",
            "enabled": True,
            "peers": page["items"],
            "total": page["total"],
            "hub": cfg,
            "v": values or {"enabled": True},
            "errors": errors or {},
        },
        status=status,
    )


@router.get("/network")
async def network_page(request: Request, state: StateDep, _: CurrentAdmin) -> Response:
    return await _page(request, state)


@router.post("/network/peers")
async def create_peer(
    request: Request, state: StateDep, session: CurrentAdmin, audit: AuditDep
) -> Response:
    values = await read_form(request)
    shown = values | {"enabled": "enabled" in values}
    try:
        data = to_data(
            values, fields=PeerCreate.model_fields, checkboxes=("enabled",), lines=("allowed_ips",)
        )
        body = validate(PeerCreate, data)
        row = await usecases.create_peer(
            state.db,
            state.sealer,
            state.settings,
            audit.context(actor_of(session)),
            body,
            record_key_generated=False,
        )
    except FormErrors as exc:
        return await _page(request, state, values=shown, errors=exc.errors, status=exc.status)
    except REFUSALS as exc:
        err = from_api_error(exc)
        return await _page(request, state, values=shown, errors=err.errors, status=err.status)
    return redirect_after_change(request, f"/admin/network/peers/{row['id']}")


async def _peer_page(
    request: Request,
    state: Services,
    peer_id: UUID,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    try:
        peer = await service.get_peer(state.db, state.settings, peer_id)
    except REFUSALS as exc:
        return flash_error(request, exc.message, status_of(exc))
    shown = values or {
        "name": peer["name"],
        "allowed_ips": "\n".join(peer["allowed_ips"]),
        "notes": peer["notes"] or "",
    }
    return render(
        request,
        "peer.html",
        {"nav": "network", "peer": peer, "v": shown, "errors": errors or {}},
        partial="partials/peer_form.html",
        status=status,
    )


@router.get("/network/peers/{peer_id}")
async def peer_page(peer_id: UUID, request: Request, state: StateDep, _: CurrentAdmin) -> Response:
    return await _peer_page(request, state, peer_id)


@router.post("/network/peers/{peer_id}")
async def update_peer(
    peer_id: UUID, request: Request, state: StateDep, session: CurrentAdmin, audit: AuditDep
) -> Response:
    values = await read_form(request)
    try:
        data = to_data(
            values,
            fields=PeerUpdate.model_fields,
            lines=("allowed_ips",),
            keep_empty=("notes",),
        )
        body = validate(PeerUpdate, data)
        await usecases.update_peer(
            state.db, state.settings, audit.context(actor_of(session)), peer_id, body
        )
    except FormErrors as exc:
        return await _peer_page(
            request, state, peer_id, values=values, errors=exc.errors, status=exc.status
        )
    except REFUSALS as exc:
        err = from_api_error(exc)
        return await _peer_page(
            request, state, peer_id, values=values, errors=err.errors, status=err.status
        )
    return redirect_after_change(request, f"/admin/network/peers/{peer_id}")


@router.post("/network/peers/{peer_id}/{action}")
async def peer_action(
    peer_id: UUID,
    action: str,
    request: Request,
    state: StateDep,
    session: CurrentAdmin,
    audit: AuditDep,
) -> Response:
    context = audit.context(actor_of(session))
    try:
        if action in ("enable", "disable"):
            await usecases.set_enabled(
                state.db, state.settings, context, peer_id, action == "enable"
            )
        elif action == "delete":
            await usecases.delete_peer(state.db, state.settings, context, peer_id)
        else:
            return flash_error(request, f"unknown action {action!r}", 404)
    except REFUSALS as exc:
        return flash_error(request, exc.message, status_of(exc))
    return redirect_after_change(request, "/admin/network")


@router.get("/network/peers/{peer_id}/config")
async def peer_config(
    peer_id: UUID, request: Request, state: StateDep, session: CurrentAdmin, audit: AuditDep
) -> Response:
    try:
        text = await usecases.export_config(
            state.db, state.sealer, state.settings, audit.context(actor_of(session)), peer_id
        )
        peer = await service.get_peer(state.db, state.settings, peer_id)
    except REFUSALS as exc:
        return flash_error(request, exc.message, status_of(exc))
    return Response(
        text,
        media_type="text/plain; charset=utf-8",
        headers={
            **NO_STORE,
            "Content-Disposition": f'attachment; filename="{_filename(peer["name"])}"',
        },
    )


@router.get("/network/peers/{peer_id}/qr")
async def peer_qr(
    peer_id: UUID, request: Request, state: StateDep, session: CurrentAdmin, audit: AuditDep
) -> Response:
    """A fragment with the QR code, loaded only when asked for (it holds the private key)."""
    try:
        svg = await usecases.export_qr(
            state.db,
            state.sealer,
            state.settings,
            audit.context(actor_of(session)),
            peer_id,
            kind="svg",
            scale=4,
        )
    except REFUSALS as exc:
        return flash_error(request, exc.message, status_of(exc))
    return render(
        request,
        "partials/peer_qr.html",
        {"data_uri": "data:image/svg+xml;base64," + base64.b64encode(svg).decode()},
    )
