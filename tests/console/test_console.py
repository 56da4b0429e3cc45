"""The console end to end: a ticket, a WebSocket on this origin, `pct enter` in a PTY over
the node's pinned SSH connection to the simulator, and every refusal before the upgrade."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.conftest import flush_audit
from tests.console.conftest import Plane


async def read_until(ws: ClientConnection, needle: bytes, limit: float = 10.0) -> bytes:
    """Terminal output until `needle` appears (bounded in time, not a sleep)."""
    seen = b""
    async with asyncio.timeout(limit):
        while needle not in seen:
            frame = await ws.recv()
            assert isinstance(frame, bytes), f"text frame from the server: {frame!r}"
            seen += frame
    return seen


async def sessions_ended(plane: Plane) -> list[dict[str, Any]]:
    """The session rows, once every one is closed (the server closes the row just after
    the socket, so a client may see the close first)."""
    async with asyncio.timeout(10):
        while await plane.db.fetch_val(
            "SELECT count(*) FROM console_sessions WHERE ended_at IS NULL"
        ):
            await asyncio.sleep(0.02)
    rows: list[dict[str, Any]] = await plane.db.fetch_all(
        "SELECT * FROM console_sessions ORDER BY started_at"
    )
    return rows


async def ticket(client: Any, path: str) -> dict[str, Any]:
    r = await client.post(path)
    assert r.status_code == 200, r.text
    return r.json()


async def refused(url: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    with pytest.raises(InvalidStatus) as caught:
        async with connect(url, **kwargs):
            pass
    response = caught.value.response
    return response.status_code, json.loads(response.body or b"{}")


async def test_echo_hello_through_the_websocket(plane: Plane) -> None:
    ada = await plane.user("ada@example.com")
    tenant = await plane.active_tenant(ada, "ada")
    issued = await ticket(ada["client"], f"/api/v1/user/tenants/{tenant['id']}/console")
    assert issued["expires_in"] == 30
    assert issued["ws_url"] == plane.ws_base + issued["ws_path"]
    async with connect(issued["ws_url"] + "&cols=100&rows=30") as ws:
        await read_until(ws, b"root@ada:~# ")
        await ws.send(b"echo hello\r")
        out = await read_until(ws, b"hello\r\n")
        assert b"hello" in out
        await ws.send(json.dumps({"type": "resize", "cols": 132, "rows": 43}))
        await ws.send(b"stty size\r")
        await read_until(ws, b"43 132")
        await ws.send(b"exit\r")
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(10):
                while True:
                    await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000
    [session] = await sessions_ended(plane)
    await flush_audit(plane.app)
    rows = await plane.db.fetch_all(
        "SELECT action, actor, details FROM audit_log WHERE target_id = %(id)s ORDER BY id",
        {"id": str(tenant["id"])},
    )
    actions = [r["action"] for r in rows]
    assert actions[-3:] == ["console.ticket", "console.start", "console.end"]
    end = rows[-1]["details"]
    assert end["reason"] == "exit" and end["bytes_in"] > 10 and end["bytes_out"] > 20
    assert rows[-1]["actor"] == f"user:{ada['id']}"
    assert "hello" not in json.dumps([r["details"] for r in rows])  # never the content
    assert session["end_reason"] == "exit" and session["bytes_out"] == end["bytes_out"]


async def test_a_ticket_works_once(plane: Plane) -> None:
    ada = await plane.user("ada@example.com")
    tenant = await plane.active_tenant(ada, "ada")
    issued = await ticket(ada["client"], f"/api/v1/user/tenants/{tenant['id']}/console")
    async with connect(issued["ws_url"]) as ws:
        await read_until(ws, b"# ")
        status, body = await refused(issued["ws_url"])
        assert status == 401 and body["error"]["message"] == "this console ticket was used already"
        assert body["error"]["code"] == "unauthorized" and "request_id" in body


async def test_expired_unknown_and_missing_tickets_are_refused(plane: Plane) -> None:
    ada = await plane.user("ada@example.com")
    tenant = await plane.active_tenant(ada, "ada")
    issued = await ticket(ada["client"], f"/api/v1/user/tenants/{tenant['id']}/console")
    await plane.db.execute("UPDATE console_tickets SET expires_at = now() - interval '1 s'")
    status, body = await refused(issued["ws_url"])
    assert (status, body["error"]["message"]) == (401, "console ticket expired")
    status, body = await refused(f"{plane.ws_base}/api/v1/console/ws?ticket={'x' * 43}")
    assert (status, body["error"]["message"]) == (401, "unknown console ticket")
    status, _ = await refused(f"{plane.ws_base}/api/v1/console/ws")
    assert status == 401
    assert await plane.db.fetch_val("SELECT count(*) FROM console_sessions") == 0


async def test_only_the_owner_or_an_admin(plane: Plane) -> None:
    ada = await plane.user("ada@example.com")
    bob = await plane.user("bob@example.com")
    tenant = await plane.active_tenant(ada, "ada")
    r = await bob["client"].post(f"/api/v1/user/tenants/{tenant['id']}/console")
    assert r.status_code == 404
    r = await plane.http.post(f"/api/v1/user/tenants/{tenant['id']}/console")
    assert r.status_code == 401
    r = await ada["client"].post(f"/api/v1/tenants/{tenant['id']}/console")
    assert r.status_code == 403  # a user token on the admin route
    r = await plane.http.post(f"/api/v1/tenants/{tenant['id']}/console")
    assert r.status_code == 401
    r = await ada["client"].post("/api/v1/user/tenants/not-a-uuid/console")
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "tenant_id"
    r = await plane.admin.post("/api/v1/tenants/00000000-0000-4000-8000-000000000000/console")
    assert r.status_code == 404
    issued = await ticket(plane.admin, f"/api/v1/tenants/{tenant['id']}/console")
    async with connect(issued["ws_url"]) as ws:
        await read_until(ws, b"root@ada:~# ")
        await ws.send(b"hostname\r")
        await read_until(ws, b"ada\r\n")
    await flush_audit(plane.app)
    actors = await plane.db.fetch_all(
        "SELECT DISTINCT actor FROM audit_log WHERE action = 'console.start'"
    )
    assert [r["actor"] for r in actors] == ["admin-token"]


async def test_suspended_tenant_and_disabled_user_are_refused(plane: Plane) -> None:
    ada = await plane.user("ada@example.com")
    tenant = await plane.active_tenant(ada, "ada")
    path = f"/api/v1/user/tenants/{tenant['id']}/console"
    issued = await ticket(ada["client"], path)
    await plane.db.execute(
        "UPDATE tenants SET status = 'suspended' WHERE id = %(id)s", {"id": tenant["id"]}
    )
    r = await ada["client"].post(path)
    assert r.status_code == 409 and "suspended" in r.json()["error"]["message"]
    status, body = await refused(issued["ws_url"])  # issued while active, used after
    assert status == 409 and "suspended" in body["error"]["message"]
    await plane.db.execute(
        "UPDATE tenants SET status = 'active' WHERE id = %(id)s", {"id": tenant["id"]}
    )
    issued = await ticket(ada["client"], path)
    r = await plane.admin.post(f"/api/v1/users/{ada['id']}/disable")
    assert r.status_code == 200, r.text
    status, _ = await refused(issued["ws_url"])
    assert status == 404


async def test_a_foreign_origin_is_refused(plane: Plane) -> None:
    ada = await plane.user("ada@example.com")
    tenant = await plane.active_tenant(ada, "ada")
    issued = await ticket(ada["client"], f"/api/v1/user/tenants/{tenant['id']}/console")
    status, body = await refused(issued["ws_url"], origin="https://evil.example")  # type: ignore[arg-type]
    assert status == 403 and body["error"]["code"] == "forbidden"
    own = plane.base  # the page's own origin is fine
    async with connect(issued["ws_url"], origin=own) as ws:  # type: ignore[arg-type]
        await read_until(ws, b"# ")


async def test_a_node_without_ssh_gets_no_console(plane: Plane) -> None:
    ada = await plane.user("ada@example.com")
    tenant = await plane.active_tenant(ada, "ada")
    await plane.db.execute("UPDATE nodes SET ssh_host_key = NULL")
    r = await ada["client"].post(f"/api/v1/user/tenants/{tenant['id']}/console")
    assert r.status_code == 409 and "SSH" in r.json()["error"]["message"]
