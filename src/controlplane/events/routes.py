"""HTTP for the live events: `GET /api/v1/user/events` (a user's own tenants) and
`GET /api/v1/events` (admin: every tenant and node).

`text/event-stream`: `event: tenant` (or `node`, `node_deleted`, `reset`), `id:` the
event's number (increasing), `data:` the JSON the REST API shows for that object at that
moment (`UserTenantPublic`, `TenantPublic`, `NodePublic`). Send `Last-Event-ID` to resume
after a reconnect; `: ping` comments keep idle connections open. A user's stream ends when
its access token expires (or the user is disabled): reconnect with a fresh token.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse

from controlplane.auth.deps import UserDep
from controlplane.auth.tokens import TokenError, decode_access_token
from controlplane.config import Settings
from controlplane.deps import AdminDep, StateDep
from controlplane.events.hub import EventHub
from controlplane.events.stream import event_stream, frame
from controlplane.nodes.schemas import NodePublic
from controlplane.state import Services
from controlplane.tenants.schemas import TenantPublic
from controlplane.users import service as users
from controlplane.users.schemas import UserTenantPublic
from controlplane.users.tenant_view import user_tenant
from controlplane.web.errors import ServiceUnavailable, error_responses

router = APIRouter(tags=["events"])

LastEventId = Annotated[
    int | None,
    Header(
        alias="Last-Event-ID",
        ge=0,
        le=2**63 - 1,
        description="The id of the last event received: the stream resumes after it",
    ),
]
STREAM_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def _stream_doc(what: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": what,
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **error_responses(401, 403, 422, 503),
    }


def hub_or_503(state: Services) -> EventHub:
    hub = state.events
    if hub is None:
        raise ServiceUnavailable("live events are not running in this process")
    return hub  # type: ignore[no-any-return]


def _user_render(settings: Settings) -> Any:
    def render(row: dict[str, Any]) -> bytes:
        body = UserTenantPublic.model_validate(user_tenant(row["data"], settings))
        return frame("tenant", row["id"], body.model_dump_json())

    return render


def _admin_render(row: dict[str, Any]) -> bytes:
    if row["kind"] == "node":
        if row["deleted"]:
            return frame("node_deleted", row["id"], json.dumps({"id": str(row["subject_id"])}))
        return frame("node", row["id"], NodePublic.model_validate(row["data"]).model_dump_json())
    return frame("tenant", row["id"], TenantPublic.model_validate(row["data"]).model_dump_json())


@router.get(
    "/api/v1/user/events",
    response_class=StreamingResponse,
    responses=_stream_doc("Changes of the caller's tenants: `event: tenant`"),
)
async def user_events(
    request: Request, user: UserDep, state: StateDep, last_event_id: LastEventId = None
) -> StreamingResponse:
    hub = hub_or_503(state)
    settings = state.settings
    token = request.headers["authorization"].partition(" ")[2].strip()
    try:
        expires = decode_access_token(settings, token).expires_at
    except TokenError:  # pragma: no cover (UserDep checked it a moment ago)
        expires = datetime.now(UTC)
    deadline = time.monotonic() + (expires - datetime.now(UTC)).total_seconds()

    async def still_allowed() -> bool:
        row = await users.user_for_token(state.db, user["id"])
        return (
            row is not None
            and row["disabled_at"] is None
            and row["token_version"] == user["token_version"]
        )

    stream = event_stream(
        hub,
        state.db,
        owner=user["id"],
        last_event_id=last_event_id,
        heartbeat_s=settings.events_heartbeat_s,
        render=_user_render(settings),
        still_allowed=still_allowed,
        deadline=deadline,
    )
    return StreamingResponse(stream, media_type="text/event-stream", headers=STREAM_HEADERS)


@router.get(
    "/api/v1/events",
    response_class=StreamingResponse,
    responses=_stream_doc("Changes of every tenant (`event: tenant`) and node (`event: node`)"),
)
async def admin_events(
    _: AdminDep, state: StateDep, last_event_id: LastEventId = None
) -> StreamingResponse:
    hub = hub_or_503(state)

    async def still_allowed() -> bool:
        return True  # the admin token is fixed for the life of the process

    stream = event_stream(
        hub,
        state.db,
        owner=None,
        last_event_id=last_event_id,
        heartbeat_s=state.settings.events_heartbeat_s,
        render=_admin_render,
        still_allowed=still_allowed,
    )
    return StreamingResponse(stream, media_type="text/event-stream", headers=STREAM_HEADERS)
