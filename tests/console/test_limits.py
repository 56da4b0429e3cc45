"""Console limits and endings: sessions per tenant and per user, leases of dead
replicas, the idle timeout, the browser closing first."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.console.conftest import Plane
from tests.console.test_console import read_until, refused, sessions_ended, ticket


@pytest.fixture
def console_settings() -> dict[str, Any]:
    return {"console_max_per_tenant": 1, "console_max_per_user": 2, "console_idle_timeout_s": 3}


async def test_session_limits_per_tenant_and_per_user(plane: Plane) -> None:
    ada = await plane.user("ada@example.com")
    one = await plane.active_tenant(ada, "one")
    two = await plane.active_tenant(ada, "two")
    three = await plane.active_tenant(ada, "three")
    first = await ticket(ada["client"], f"/api/v1/user/tenants/{one['id']}/console")
    early = await ticket(ada["client"], f"/api/v1/user/tenants/{one['id']}/console")
    async with connect(first["ws_url"]) as ws1:
        await read_until(ws1, b"# ")
        r = await ada["client"].post(f"/api/v1/user/tenants/{one['id']}/console")
        assert r.status_code == 409 and "CONSOLE_MAX_PER_TENANT=1" in r.json()["error"]["message"]
        status, _ = await refused(early["ws_url"])  # issued before, refused at the upgrade
        assert status == 409
        second = await ticket(ada["client"], f"/api/v1/user/tenants/{two['id']}/console")
        async with connect(second["ws_url"]) as ws2:
            await read_until(ws2, b"# ")
            r = await ada["client"].post(f"/api/v1/user/tenants/{three['id']}/console")
            assert (
                r.status_code == 409 and "you have 2 open consoles" in r.json()["error"]["message"]
            )
    # both closed by the browser: the sessions end, and the limits free up
    reasons = await sessions_ended(plane)
    assert {r["end_reason"] for r in reasons} == {"closed"}
    await ticket(ada["client"], f"/api/v1/user/tenants/{three['id']}/console")


async def test_a_dead_replicas_sessions_stop_counting(plane: Plane) -> None:
    ada = await plane.user("ada@example.com")
    one = await plane.active_tenant(ada, "one")
    first = await ticket(ada["client"], f"/api/v1/user/tenants/{one['id']}/console")
    async with connect(first["ws_url"]) as ws:
        await read_until(ws, b"# ")
        # as if the process serving it was killed: its lease runs out, nobody renews it
        await plane.db.execute("UPDATE console_sessions SET alive_until = now() - interval '1 s'")
        second = await ticket(ada["client"], f"/api/v1/user/tenants/{one['id']}/console")
        async with connect(second["ws_url"]) as ws2:
            await read_until(ws2, b"# ")
    rows = await sessions_ended(plane)
    assert [r["end_reason"] for r in rows] == ["lost", "closed"]


async def test_an_idle_console_is_closed(plane: Plane) -> None:
    ada = await plane.user("ada@example.com")
    tenant = await plane.active_tenant(ada, "ada")
    issued = await ticket(ada["client"], f"/api/v1/user/tenants/{tenant['id']}/console")
    async with connect(issued["ws_url"]) as ws:
        await read_until(ws, b"# ")
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(15):
                while True:
                    await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.reason == "idle for 3 s"
    [row] = await sessions_ended(plane)
    assert row["end_reason"] == "idle"


async def test_two_sockets_racing_for_one_ticket_one_wins(plane: Plane) -> None:
    """The compare-and-swap on used_at: of two upgrades presenting one ticket at once,
    exactly one gets a session."""
    from controlplane.console import service
    from controlplane.errors import Unauthorized

    ada = await plane.user("ada@example.com")
    tenant = await plane.active_tenant(ada, "ada")
    issued = await ticket(ada["client"], f"/api/v1/user/tenants/{tenant['id']}/console")
    state = plane.app.state.cp
    results = await asyncio.gather(
        *(
            service.open_session(state.db, state.settings, state.audit, issued["ticket"])
            for _ in range(2)
        ),
        return_exceptions=True,
    )
    opened = [r for r in results if isinstance(r, service.Opened)]
    refused_ = [r for r in results if isinstance(r, Unauthorized)]
    assert len(opened) == 1 and len(refused_) == 1, results
    assert await plane.db.fetch_val("SELECT count(*) FROM console_sessions") == 1


async def test_two_tickets_racing_for_the_last_place_one_wins(plane: Plane) -> None:
    """The limit is checked under the tenant's advisory lock: with one place left, two
    upgrades (admin tickets: no user lock) queued on that lock get one session between
    them."""
    import psycopg

    from controlplane.console import service

    ada = await plane.user("ada@example.com")
    tenant = await plane.active_tenant(ada, "ada")
    path = f"/api/v1/tenants/{tenant['id']}/console"
    first, second = await ticket(plane.admin, path), await ticket(plane.admin, path)
    state = plane.app.state.cp
    key = f"console-tenant:{tenant['id']}"
    async with await psycopg.AsyncConnection.connect(state.db.url, autocommit=True) as holder:
        await holder.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (key,))
        racers = [
            asyncio.create_task(
                service.open_session(state.db, state.settings, state.audit, t["ticket"])
            )
            for t in (first, second)
        ]
        async with asyncio.timeout(10):  # both wait for the lock, having counted nothing
            while (
                await plane.db.fetch_val(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND query LIKE '%%pg_advisory_xact_lock%%'"
                )
                < 2
            ):
                await asyncio.sleep(0.01)
        await holder.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))
        results = await asyncio.gather(*racers, return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["Conflict", "Opened"], results
    assert await plane.db.fetch_val("SELECT count(*) FROM console_sessions") == 1


async def test_a_session_ends_when_the_tenant_is_suspended_under_it(
    plane: Plane, monkeypatch: pytest.MonkeyPatch
) -> None:
    from controlplane.console import service

    monkeypatch.setattr(service, "RENEW_EVERY", 0.1)  # renewals re-check the tenant
    ada = await plane.user("ada@example.com")
    tenant = await plane.active_tenant(ada, "ada")
    issued = await ticket(ada["client"], f"/api/v1/user/tenants/{tenant['id']}/console")
    async with connect(issued["ws_url"]) as ws:
        await read_until(ws, b"# ")
        await plane.db.execute(
            "UPDATE tenants SET status = 'suspending' WHERE id = %(id)s", {"id": tenant["id"]}
        )
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(10):
                while True:
                    await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    [row] = await sessions_ended(plane)
    assert row["end_reason"] == "revoked"
