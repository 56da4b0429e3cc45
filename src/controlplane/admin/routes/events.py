"""Live events for the dashboard: `GET /admin/events`, the admin event stream behind the
dashboard's session cookie (a browser's EventSource sends cookies, never an Authorization
header, so the API's `/api/v1/events` with its bearer token is no use to a page).

Frames say only what changed (`event: tenant` or `node`, `data: {"id": ...}`): the page's
script (static/admin.js) turns them into the htmx events its fragments listen for, and
the fragments fetch themselves again, so nothing here renders HTML or leaks more than an
id. The stream does not count as activity (it runs whenever a page is open), and ends
when the session does: it is checked again at every heartbeat.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from controlplane.admin.guard import CurrentAdmin
from controlplane.admin.sessions import SESSION_COOKIE, check_session, cookie_name
from controlplane.deps import StateDep
from controlplane.events.routes import STREAM_HEADERS, LastEventId, hub_or_503
from controlplane.events.stream import event_stream, frame

router = APIRouter()


def _render(row: dict[str, Any]) -> bytes:
    kind = "node" if row["kind"] == "node" else "tenant"
    return frame(kind, row["id"], json.dumps({"id": str(row["subject_id"])}))


@router.get("/events")
async def dashboard_events(
    request: Request, _: CurrentAdmin, state: StateDep, last_event_id: LastEventId = None
) -> StreamingResponse:
    hub = hub_or_503(state)
    settings = state.settings
    cookie = request.cookies.get(cookie_name(settings, SESSION_COOKIE))

    async def still_allowed() -> bool:  # logged out, revoked or idle: the stream ends
        return await check_session(state.db, settings, cookie, touch=False) is not None

    stream = event_stream(
        hub,
        state.db,
        owner=None,
        last_event_id=last_event_id,
        heartbeat_s=settings.events_heartbeat_s,
        render=_render,
        still_allowed=still_allowed,
    )
    return StreamingResponse(stream, media_type="text/event-stream", headers=STREAM_HEADERS)
