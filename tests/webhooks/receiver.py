"""A real HTTP receiver on loopback for webhook tests (the simulator's h11 server)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from controlplane.pvesim.server import HttpServer


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    status: int = 200
    requests: list[Received] = field(default_factory=list)
    # While set to an unset Event, each request waits for it (a slow receiver).
    hold: asyncio.Event | None = None
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    server: HttpServer | None = None
    port: int = 0

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.entered.set()
        if self.hold is not None:
            await self.hold.wait()
        self.requests.append(Received(headers, body))
        await send({"type": "http.response.start", "status": self.status,
                    "headers": [(b"content-type", b"text/plain")]})  # fmt: skip
        await send({"type": "http.response.body", "body": b"ok"})

    async def start(self) -> Receiver:
        self.server = await HttpServer(self.app).start("127.0.0.1", self.port)
        self.port = self.server.port
        return self

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.close()
            self.server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"
