"""`GET /admin/events`: the dashboard's live events behind its session cookie (what the
page's EventSource reads), against a real HTTP server (the ASGI transport would buffer
the stream)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from controlplane.config import Settings
from tests.admin.conftest import ORIGIN, SETUP_TOKEN, Browser
from tests.conftest import make_settings
from tests.events.conftest import base_url, open_stream  # noqa: F401 (base_url: a fixture)

PATH = "/admin/events"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(
        database_url, setup_token=SETUP_TOKEN, admin_origin=ORIGIN, events_heartbeat_s=0.2
    )


def cookies_of(dash: Browser) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in dash.http.cookies.items())}


async def _last_seen(app: Any) -> Any:
    return await app.state.cp.db.fetch_val(
        "SELECT last_seen_at FROM admin_sessions WHERE revoked_at IS NULL"
    )


async def test_a_session_follows_tenants_and_nodes_by_id(
    app: Any,
    dash: Browser,
    base_url: str,  # noqa: F811 (the fixture)
) -> None:
    db = app.state.cp.db
    seen_before = await _last_seen(app)
    async with open_stream(base_url, PATH, cookies_of(dash)) as reader:
        tenant = uuid.uuid4()
        await db.execute(
            "INSERT INTO tenants (id, name, subdomain, ram_mb, cores, status)"
            " VALUES (%(id)s, 'live', 'live', 64, 1, 'provisioning')",
            {"id": tenant},
        )
        await db.execute("UPDATE tenants SET status = 'active' WHERE id = %(id)s", {"id": tenant})
        first, second = await reader.next(), await reader.next()
        assert (first.event, second.event) == ("tenant", "tenant")
        assert first.data == second.data == {"id": str(tenant)}  # an id, nothing more
        assert first.id is not None and second.id is not None and second.id > first.id
        # Resuming after the first replays the second.
        resumed = {**cookies_of(dash), "Last-Event-ID": str(first.id)}
        async with open_stream(base_url, PATH, resumed) as again:
            assert (await again.next()).id == second.id
        await reader.wait_pings(3)
    # An open stream is not activity: it must not keep an idle session alive.
    assert await _last_seen(app) == seen_before


async def test_the_stream_ends_with_the_session(
    app: Any,
    dash: Browser,
    base_url: str,  # noqa: F811 (the fixture)
) -> None:
    async with open_stream(base_url, PATH, cookies_of(dash)) as reader:
        r = await dash.post_form("/admin/logout", htmx=False)
        assert r.status_code in (200, 303), r.text
        with pytest.raises(EOFError):
            await reader.next(timeout=5)


async def test_who_may_listen(
    app: Any,
    dash: Browser,
    base_url: str,  # noqa: F811 (the fixture)
) -> None:
    async with httpx.AsyncClient(base_url=base_url) as c:
        assert (await c.get(PATH)).status_code == 401
        r = await c.get(PATH, headers={"Authorization": "Bearer " + "x" * 40})
        assert r.status_code == 401  # the API's bearer token is not a dashboard session
        r = await c.get(PATH, headers={"Cookie": "cp_admin_session=forged"})
        assert r.status_code == 401
        r = await c.get(PATH, headers={**cookies_of(dash), "Last-Event-ID": "abc"})
        assert r.status_code == 422
        assert r.json()["error"]["fields"][0]["field"] == "Last-Event-ID"
