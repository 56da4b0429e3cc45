"""Tiny HTTP apps "inside" running containers, on their 127.x.y.z loopback addresses.

With ``loopback_ips`` each running container gets an address in 127.0.0.0/8 (Linux routes
the whole /8 to lo, so any of them can be bound) and answers HTTP there with its hostname
and VMID, so routing tests (Caddy, health checks) reach a real socket per tenant.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from .models import Container
from .server import HttpServer

log = logging.getLogger(__name__)


def guest_app(ct: Container) -> Any:
    """An ASGI app answering every request with the container's identity."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = json.dumps({"hostname": ct.hostname, "vmid": ct.vmid, "path": scope["path"]})
        payload = body.encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"x-pvesim-vmid", str(ct.vmid).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    return app


class GuestApps:
    def __init__(self) -> None:
        self._servers: dict[int, HttpServer] = {}

    def port_of(self, vmid: int) -> int | None:
        server = self._servers.get(vmid)
        return server.port if server else None

    async def start(self, ct: Container, port: int) -> None:
        await self.stop(ct.vmid)
        if ct.ip is None:
            return
        server = HttpServer(guest_app(ct), close_on_error=False)
        try:
            await server.start(ct.ip, port)
        except OSError as exc:  # a busy port must not fail the container's start task
            log.warning("container %s: cannot serve on %s:%s: %s", ct.vmid, ct.ip, port, exc)
            return
        self._servers[ct.vmid] = server

    async def stop(self, vmid: int) -> None:
        server = self._servers.pop(vmid, None)
        if server is not None:
            await server.close()

    async def close(self) -> None:
        for vmid in list(self._servers):
            await self.stop(vmid)
