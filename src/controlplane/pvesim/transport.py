"""An in-process httpx transport for the simulator app, with PVE's reason phrases.

``httpx.ASGITransport`` cannot carry a reason phrase (ASGI has none), and Proxmox's error
text *is* the reason phrase. This transport reads the simulator's ``x-pvesim-reason``
header into the response's ``reason_phrase`` and turns a dropped connection into the
``httpx.RemoteProtocolError`` a real socket would give.
"""

from __future__ import annotations

import httpx

from .errors import ConnectionDropped
from .server import REASON_HEADER


class SimTransport(httpx.ASGITransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await super().handle_async_request(request)
        except ConnectionDropped as exc:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            ) from exc
        headers = [(k, v) for k, v in response.headers.raw if k.lower() != REASON_HEADER]
        reason = response.headers.get(REASON_HEADER.decode())
        extensions = dict(response.extensions)
        if reason is not None:
            extensions["reason_phrase"] = reason.encode("latin-1")
        return httpx.Response(
            status_code=response.status_code,
            headers=headers,
            stream=response.stream,
            extensions=extensions,
        )
