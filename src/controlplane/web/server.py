"""Running the ASGI app under uvicorn with a guard against slow-header clients.

uvicorn closes idle keep-alive connections but has no deadline for receiving a request's
headers, so a client that dribbles one header byte every few seconds (slowloris) holds a
connection forever. `HeaderDeadlineProtocol` closes any connection whose request headers
are not complete within `HEADER_TIMEOUT` seconds of the request starting.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEADER_TIMEOUT = 10.0


class HeaderDeadlineProtocol(HttpToolsProtocol):
    header_timeout = HEADER_TIMEOUT

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_header_deadline()

    def on_headers_complete(self) -> None:
        self._disarm_header_deadline()
        super().on_headers_complete()


def uvicorn_config(app: Any, *, host: str, port: int, **kwargs: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=HeaderDeadlineProtocol,
        timeout_keep_alive=4,  # below common load balancer idle timeouts
        timeout_graceful_shutdown=10,
        log_config=None,
        server_header=False,
        proxy_headers=False,  # client addresses come from TRUSTED_PROXIES handling instead
        **kwargs,
    )
