"""Live events against a real HTTP server on loopback (the in-process ASGI transport
buffers whole responses, so streams need a socket), and an SSE reader."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn

from controlplane.config import Settings
from tests.auth.conftest import user_settings
from tests.provisioner.conftest import plane  # noqa: F401 (a fixture)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return user_settings(database_url, events_heartbeat_s=0.2)


@contextlib.asynccontextmanager
async def http_server(app: Any) -> AsyncIterator[str]:
    """The app (its lifespan already running) served on an ephemeral loopback port."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, lifespan="off", log_level="warning",
        timeout_graceful_shutdown=1,
    )  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def base_url(app: Any) -> AsyncIterator[str]:
    async with http_server(app) as url:
        yield url


@dataclass
class Event:
    event: str
    id: int | None
    data: Any


class SseReader:
    """Frames of one open stream, parsed; comments counted as pings."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()
        self.pings = 0

    async def wait_pings(self, count: int, timeout: float = 10.0) -> None:
        """Read until `count` heartbeats came (no event may come meanwhile)."""
        async with asyncio.timeout(timeout):
            async for line in self.lines:
                assert not line or line.startswith(":"), line
                if line.startswith(":"):
                    self.pings += 1
                    if self.pings >= count:
                        return

    async def next(self, timeout: float = 10.0) -> Event:
        fields: dict[str, str] = {}
        async with asyncio.timeout(timeout):
            async for line in self.lines:
                if line.startswith(":"):
                    self.pings += 1
                    continue
                if not line:
                    if fields:
                        break
                    continue
                name, _, value = line.partition(": ")
                fields[name] = value
            else:
                raise EOFError("the stream ended")
        raw_id = fields.get("id")
        return Event(fields["event"], int(raw_id) if raw_id else None, json.loads(fields["data"]))


@contextlib.asynccontextmanager
async def open_stream(
    base_url: str, path: str, headers: dict[str, str]
) -> AsyncIterator[SseReader]:
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(30.0)) as client,
        client.stream("GET", path, headers=headers) as response,
    ):
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield SseReader(response)
