"""`GET /metrics`: the Prometheus exposition, for the admin token or METRICS_TOKEN."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client.exposition import choose_encoder

from controlplane.auth.tokens import TokenError, decode_access_token
from controlplane.deps import WWW_AUTH, StateDep
from controlplane.errors import Forbidden
from controlplane.web.errors import Challenge, error_responses

router = APIRouter(tags=["metrics"])
_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="MetricsToken",
    description="METRICS_TOKEN, or the admin token (API_TOKEN)",
)


async def require_metrics_reader(
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    if credentials is None:
        raise Challenge("missing bearer token", headers=WWW_AUTH)
    presented = credentials.credentials.encode()
    settings = state.settings
    matched = False
    for expected in (settings.metrics_token, settings.api_token):
        if expected is not None:  # compare with both: the time taken says nothing
            matched |= hmac.compare_digest(presented, expected.get_secret_value().encode())
    if matched:
        return
    try:
        decode_access_token(settings, credentials.credentials)
    except TokenError:
        raise Challenge("invalid token", headers=WWW_AUTH) from None
    raise Forbidden("metrics need METRICS_TOKEN or the admin token")


@router.get(
    "/metrics",
    response_class=Response,
    dependencies=[Depends(require_metrics_reader)],
    responses={
        200: {
            "content": {"text/plain": {}, "application/openmetrics-text": {}},
            "description": "Prometheus text format (OpenMetrics when the Accept header asks)",
        },
        **error_responses(401, 403),
    },
    summary="Metrics in the Prometheus format",
)
async def metrics_endpoint(request: Request, state: StateDep) -> Response:
    metrics = state.metrics
    await metrics.collector.refresh(state.db, state.audit, state.worker)
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(
        encoder(metrics.registry),
        media_type=None,
        headers={"Content-Type": content_type, "Cache-Control": "no-store"},
    )


def install_metrics(app: FastAPI) -> None:
    """Add /metrics (the HTTP counts come from `web.middleware.EdgeMiddleware`)."""
    app.include_router(router)
