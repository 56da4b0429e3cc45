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
    session = await plane.db.fetch_one("SELECT * FROM console_sessions")
    assert session["ended_at"] is not None and session["bytes_out"] == end["bytes_out"]
