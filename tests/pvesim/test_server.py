"""The simulator over a real loopback socket: what pveproxy does on the wire."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import httpx
import pytest

from controlplane.proxmox import ProxmoxClient, ProxmoxUnavailableError
from controlplane.pvesim import (
    DEFAULT_TOKEN_ID,
    DEFAULT_TOKEN_SECRET,
    HttpServer,
    Simulator,
    create_app,
)

from .conftest import ROOT


@pytest.fixture
async def served(sim: Simulator) -> AsyncIterator[HttpServer]:
    server = await HttpServer(create_app(sim), keepalive_timeout=0.3).start("127.0.0.1", 0)
    yield server
    await server.close()


async def raw_exchange(server: HttpServer, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(request)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 5)  # until the server closes
    writer.close()
    return data


def request(method: str, path: str, body: bytes = b"", *, auth: bool = True) -> bytes:
    head = [f"{method} {path} HTTP/1.1", "Host: pve", f"Content-Length: {len(body)}"]
    if auth:
        head.append(f"Authorization: {ROOT['Authorization']}")
    if body:
        head.append("Content-Type: application/x-www-form-urlencoded")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def test_reason_phrase_on_the_wire(served: HttpServer, sim: Simulator) -> None:
    sim.containers[9000].config["lock"] = "disk"
    data = await raw_exchange(
        served, request("POST", "/api2/json/nodes/pve1/lxc/9000/clone", b"newid=200")
    )
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 500 CT is locked (disk)"
    headers = {k: v.strip() for k, _, v in (line.partition(b":") for line in lines[1:])}
    assert headers[b"Connection"] == b"close"  # pveproxy closes after an error
    assert headers[b"Content-Type"] == b"application/json;charset=UTF-8"
    assert b"X-Pvesim-Reason" not in headers and b"x-pvesim-reason" not in headers
    assert body == b'{"data":null,"message":"CT is locked (disk)\\n"}'


async def test_401_on_the_wire(served: HttpServer) -> None:
    data = await raw_exchange(served, request("GET", "/api2/json/nodes", auth=False))
    assert data.startswith(b"HTTP/1.1 401 No ticket\r\n")
    assert data.endswith(b"\r\n\r\n")  # no body


async def test_keepalive_closes_when_idle(served: HttpServer) -> None:
    reader, writer = await asyncio.open_connection(served.host, served.port)
    writer.write(request("GET", "/api2/json/version"))
    first = await asyncio.wait_for(reader.readuntil(b'"}}'), 5)
    assert first.startswith(b"HTTP/1.1 200 OK")
    assert b"Connection: Keep-Alive" in first
    started = asyncio.get_running_loop().time()
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server ...
    assert asyncio.get_running_loop().time() - started >= 0.25  # ... after the idle time
    writer.close()


async def test_dropped_connection_sends_nothing(served: HttpServer, sim: Simulator) -> None:
    sim.faults.update({"drop_rate": 1.0})
    assert await raw_exchange(served, request("GET", "/api2/json/version")) == b""


async def test_client_over_loopback(served: HttpServer, sim: Simulator) -> None:
    async with httpx.AsyncClient() as http:
        client = ProxmoxClient(
            http, base_url=served.url, token_id=DEFAULT_TOKEN_ID, token_secret=DEFAULT_TOKEN_SECRET
        )
        assert (await client.version())["release"] == "8.4"
        await asyncio.sleep(0.4)  # the pooled connection has been closed by the server
        assert (await client.version())["release"] == "8.4"
        sim.faults.update({"drop_rate": 1.0})
        with pytest.raises(ProxmoxUnavailableError, match=r"RemoteProtocolError|ReadError"):
            await client.version()
        # GETs are retried once on a fresh connection. Each request draws once from the
        # simulator's seeded generator, so sequential calls have an exact expected outcome:
        # a call fails only when both its attempts are dropped.
        sim.faults.update({"drop_rate": 0.5})
        sim.rng = random.Random(7)
        replay = random.Random(7)
        expected = []
        for _ in range(20):
            dropped_first = replay.random() < 0.5
            expected.append(not dropped_first or replay.random() >= 0.5)
        outcomes = []
        for _ in range(20):
            try:
                outcomes.append((await client.version())["release"] == "8.4")
            except ProxmoxUnavailableError:
                outcomes.append(False)
        assert outcomes == expected
        assert 0 < expected.count(False) < expected.count(True)  # the seed exercises both


async def test_sim_endpoints_over_loopback(served: HttpServer) -> None:
    async with httpx.AsyncClient(base_url=served.url) as http:
        state = (await http.get("/_sim/state")).json()
        assert [c["vmid"] for c in state["containers"]] == [9000, 9001]
