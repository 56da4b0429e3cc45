"""`GET /healthz`: is this replica able to serve? (It can reach its database.)"""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from controlplane.deps import DbDep

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


class Health(BaseModel):
    status: str
    reason: str | None = None


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}})
async def healthz(db: DbDep) -> JSONResponse:
    try:
        await asyncio.wait_for(db.ping(), timeout=2.0)
    except Exception as exc:
        # Anyone may call this: the driver's text (host names, users, paths) stays in the log.
        log.warning("health check failed", extra={"error": f"{type(exc).__name__}: {exc}"})
        return JSONResponse(
            {"status": "unavailable", "reason": "database: unavailable"}, status_code=503
        )
    return JSONResponse({"status": "ok"})
