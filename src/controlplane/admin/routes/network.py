"""Network: WireGuard peers, when the WireGuard integration is enabled."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from controlplane.admin.guard import CurrentAdmin
from controlplane.admin.web import render

router = APIRouter()


@router.get("/network")
async def network_page(request: Request, _: CurrentAdmin) -> Response:
    return render(request, "network.html", {"nav": "network", "enabled": False})
