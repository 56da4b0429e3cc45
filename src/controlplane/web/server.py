"""Running the ASGI app under uvicorn with guards on each connection.

uvicorn (httptools) buffers request headers without bound and has no deadline for
receiving a request's headers or its body, so one client could make the server hold
megabytes of headers per connection, or hold connections forever by dribbling bytes
(slowloris). `GuardedHttpProtocol` adds, per request on a connection:

- a header deadline: headers not complete `header_timeout` seconds after the request
  started close the connection;
- a header size and count limit: more than `max_header_bytes` of request line and
  headers, or more than `max_header_count` headers, get a 431 and the connection closes;
  the oversized part is never handed to the parser, so it is never buffered;
- a body deadline: a body not complete `body_timeout` seconds after its headers gets a
  408 (the application then sees the client as disconnected) and the connection closes.

A refusal is sent only when nothing else is on the wire (no earlier response of a
pipelined request still being written); otherwise the connection is just closed. After
a refusal the server stops writing and discards what the client still sends, for at most
`LINGER_S` seconds or `LINGER_BYTES`, so the client reads the answer instead of a reset.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

if TYPE_CHECKING:
    from controlplane.config import Settings

log = logging.getLogger("controlplane.server")

HEADER_TIMEOUT = 10.0
LINGER_S = 1.0
LINGER_BYTES = 1_048_576


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout: float = HEADER_TIMEOUT
    max_header_bytes: int = 65_536
    max_header_count: int = 100
    body_timeout: float = 20.0

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        return cls(
            max_header_bytes=settings.max_header_bytes,
            max_header_count=settings.max_header_count,
            body_timeout=settings.body_timeout_s,
        )


class _Refusal(Exception):
    """Why a request is answered (and its connection closed) by the protocol itself."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class GuardedHttpProtocol(HttpToolsProtocol):
    limits = ConnectionLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._body_deadline: asyncio.TimerHandle | None = None
        self._linger: asyncio.TimerHandle | None = None
        self._reading_head = True  # between requests or inside a request's headers
        self._head_bytes = 0
        self._header_count = 0
        self._refused = False
        self._discarded = 0

    # --- deadlines ---------------------------------------------------------------------

    def _arm_header_deadline(self) -> None:
        self._disarm(self._header_deadline)
        self._header_deadline = self.loop.call_later(
            self.limits.header_timeout, self._headers_too_slow
        )

    def _disarm(self, timer: asyncio.TimerHandle | None) -> None:
        if timer is not None:
            timer.cancel()

    def _disarm_all(self) -> None:
        for timer in (self._header_deadline, self._body_deadline, self._linger):
            self._disarm(timer)
        self._header_deadline = self._body_deadline = self._linger = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def _body_too_slow(self) -> None:
        self._body_deadline = None
        seconds = f"{self.limits.body_timeout:g}"
        self._refuse(
            _Refusal(408, "body_timeout", f"the request body did not arrive within {seconds} s")
        )

    # --- refusing a request ------------------------------------------------------------

    def _refuse(self, refusal: _Refusal) -> None:
        if self._refused or self.transport is None or self.transport.is_closing():
            return
        self._refused = True
        self._disarm_all()
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "?"
        log.info("request refused", extra={"client": client, "reason": refusal.code})
        cycle = self.cycle
        if self._reading_head:  # a new request: the previous one must be fully answered
            can_answer = not self.pipeline and (cycle is None or cycle.response_complete)
        else:  # this request's body: only if the application has not answered it yet
            can_answer = cycle is not None and not cycle.response_started
        if cycle is not None and not cycle.response_complete:
            # The application (if it runs) now sees a disconnected client; its answer is dropped.
            cycle.disconnected = True
            cycle.message_event.set()
        if not can_answer:
            self.transport.close()
            return
        self.transport.write(_error_response(refusal))
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._linger = self.loop.call_later(LINGER_S, self.transport.close)

    # --- protocol and parser callbacks --------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_all()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:  # lingering: read and drop, then close
            self._discarded += len(data)
            if self._discarded > LINGER_BYTES:
                self.transport.close()
            return
        # Headers are handed to the parser only up to the limit, so an oversized head is
        # never buffered; whatever follows complete headers (the body) passes unmetered.
        while data and self._reading_head:
            room = self.limits.max_header_bytes - self._head_bytes
            if room <= 0:
                limit = self.limits.max_header_bytes
                self._refuse(
                    _Refusal(431, "headers_too_large", f"request headers exceed {limit} bytes")
                )
                return
            piece, data = data[:room], data[room:]
            self._head_bytes += len(piece)
            self._feed(piece)
            if self._refused or self.transport.is_closing():
                return
        if data:
            self._feed(data)

    def _feed(self, data: bytes) -> None:
        # uvicorn's data_received, except that a refusal raised from a parser callback is
        # answered as such instead of as a malformed request.
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _Refusal):
                self._refuse(exc.__context__)
                return
            self.logger.warning("Invalid HTTP request received.")
            self.send_400_response("Invalid HTTP request received.")
        except httptools.HttpParserError:
            self.logger.warning("Invalid HTTP request received.")
            self.send_400_response("Invalid HTTP request received.")
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_header_deadline()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.max_header_count:
            limit = self.limits.max_header_count
            raise _Refusal(431, "too_many_headers", f"a request may have at most {limit} headers")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm(self._header_deadline)
        self._header_deadline = None
        self._reading_head = False
        self._body_deadline = self.loop.call_later(self.limits.body_timeout, self._body_too_slow)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm(self._body_deadline)
        self._body_deadline = None
        self._reading_head = True
        self._head_bytes = self._header_count = 0
        super().on_message_complete()


def _error_response(refusal: _Refusal) -> bytes:
    """The API's error shape, written straight to the transport (no application involved)."""
    body = json.dumps(
        {
            "error": {
                "status": refusal.status,
                "code": refusal.code,
                "message": refusal.message,
                "fields": [],
            },
            "request_id": None,
        }
    ).encode()
    head = [
        STATUS_LINE[refusal.status],
        b"content-type: application/json\r\n",
        b"content-length: " + str(len(body)).encode() + b"\r\n",
        b"connection: close\r\n\r\n",
    ]
    return b"".join(head) + body


def protocol_class(limits: ConnectionLimits) -> type[GuardedHttpProtocol]:
    """A protocol class bound to these limits (uvicorn instantiates it per connection)."""
    return type("GuardedHttpProtocol", (GuardedHttpProtocol,), {"limits": limits})


def uvicorn_config(
    app: Any,
    *,
    host: str,
    port: int,
    limits: ConnectionLimits | None = None,
    **kwargs: Any,
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol_class(limits or ConnectionLimits()),
        timeout_keep_alive=4,  # below common load balancer idle timeouts
        timeout_graceful_shutdown=10,
        log_config=None,
        server_header=False,
        proxy_headers=False,  # client addresses come from TRUSTED_PROXIES handling instead
        **kwargs,
    )
