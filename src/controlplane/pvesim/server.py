"""A small HTTP/1.1 server (asyncio + h11) for the simulator's ASGI apps.

Why not uvicorn: Proxmox puts its error text in the status line's reason phrase
(``500 CT is locked (disk)``), and ASGI has no field for a reason phrase, so uvicorn always
sends ``Internal Server Error``. This server takes the reason from the private
``x-pvesim-reason`` response header (and drops the header). It also does what pveproxy
does with connections: keep-alive closes after 5 s idle and after any answer >= 400, and a
``ConnectionDropped`` from the app aborts the connection without a response.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import ssl
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

import h11

from .errors import ConnectionDropped

REASON_HEADER = b"x-pvesim-reason"
MAX_BODY = 512 * 1024  # pve-http-server's $limit_max_post
log = logging.getLogger(__name__)

ASGIApp = Any


class _Exchange:
    """Collects one ASGI response."""

    def __init__(self) -> None:
        self.status = 500
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = bytearray()
        self.started = False
        self.done = asyncio.Event()

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
            self.headers = [(bytes(k).lower(), bytes(v)) for k, v in message.get("headers", [])]
            self.started = True
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")
            if not message.get("more_body", False):
                self.done.set()


class HttpServer:
    """Serves one ASGI app on one address; ``port=0`` picks a free port."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        keepalive_timeout: float = 5.0,
        request_timeout: float = 30.0,
        close_on_error: bool = True,
    ) -> None:
        self.app = app
        self.keepalive_timeout = keepalive_timeout
        self.request_timeout = request_timeout
        self.close_on_error = close_on_error
        self.host = ""
        self.port = 0
        self.tls = False
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    async def start(
        self, host: str = "127.0.0.1", port: int = 0, ssl_context: ssl.SSLContext | None = None
    ) -> HttpServer:
        self._server = await asyncio.start_server(
            self._connection,
            host,
            port,
            ssl=ssl_context,
            ssl_handshake_timeout=10.0 if ssl_context is not None else None,
        )
        sockname = self._server.sockets[0].getsockname()
        self.host, self.port = sockname[0], sockname[1]
        self.tls = ssl_context is not None
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()  # handlers then see EOF and end by themselves
        handlers = list(self._handlers)
        if handlers:
            _done, pending = await asyncio.wait(handlers, timeout=1.0)
            for handler in pending:  # stuck in the app (fault latency): cut it short
                handler.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        current = asyncio.current_task()
        if current is not None:
            self._handlers.add(current)
        self._writers.add(writer)
        try:
            await self._serve(reader, writer)
        except ConnectionDropped:
            writer.transport.abort()
        except (ConnectionError, TimeoutError, ssl.SSLError, h11.ProtocolError, OSError):
            pass
        except asyncio.CancelledError:
            # Only ``close()`` cancels a handler. Ending normally keeps asyncio's stream
            # callback from logging the cancellation as an error.
            writer.transport.abort()
        finally:
            self._writers.discard(writer)
            if current is not None:
                self._handlers.discard(current)
            if not writer.transport.is_closing():
                writer.transport.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        peer = writer.get_extra_info("peername")
        sock = writer.get_extra_info("sockname")
        while True:
            request, body = await self._read_request(conn, reader)
            if request is None:
                return
            exchange = await self._run_app(request, body, peer, sock)
            keep_alive = await self._respond(conn, writer, request, exchange)
            if not keep_alive or conn.our_state is h11.MUST_CLOSE:
                return
            conn.start_next_cycle()

    async def _read_request(
        self, conn: h11.Connection, reader: asyncio.StreamReader
    ) -> tuple[h11.Request | None, bytes]:
        request: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                # Between requests the idle keep-alive timeout applies (pveproxy: 5 s).
                limit = self.keepalive_timeout if request is None else self.request_timeout
                try:
                    data = await asyncio.wait_for(reader.read(65536), limit)
                except TimeoutError:
                    return None, b""
                conn.receive_data(data)
                if not data and conn.their_state is not h11.DONE:
                    return None, b""
                continue
            if isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > MAX_BODY:
                    return None, b""
            elif isinstance(event, h11.EndOfMessage):
                return request, bytes(body)
            elif isinstance(event, h11.ConnectionClosed):
                return None, b""

    async def _run_app(self, request: h11.Request, body: bytes, peer: Any, sock: Any) -> _Exchange:
        target = request.target
        raw_path, _, query = target.partition(b"?")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": request.http_version.decode(),
            "method": request.method.decode(),
            "scheme": "https" if self.tls else "http",
            "path": unquote(raw_path.decode("latin-1")),
            "raw_path": raw_path,
            "query_string": query,
            "root_path": "",
            "headers": [(k.lower(), v) for k, v in request.headers],
            "client": tuple(peer[:2]) if peer else None,
            "server": tuple(sock[:2]) if sock else None,
        }
        exchange = _Exchange()
        sent_body = False

        async def receive() -> dict[str, Any]:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            await exchange.done.wait()
            return {"type": "http.disconnect"}

        try:
            await self.app(scope, receive, exchange.send)
        except ConnectionDropped:
            raise
        except Exception:
            log.exception("simulator app failed on %s %s", request.method, request.target)
            exchange = _Exchange()
            exchange.status = 500
            exchange.headers = [(b"content-length", b"0")]
        return exchange

    async def _respond(
        self,
        conn: h11.Connection,
        writer: asyncio.StreamWriter,
        request: h11.Request,
        exchange: _Exchange,
    ) -> bool:
        reason = b""
        headers: list[tuple[bytes, bytes]] = []
        for name, value in exchange.headers:
            if name == REASON_HEADER:
                reason = value
            else:
                headers.append((name, value))
        if not reason:
            with contextlib.suppress(ValueError):
                reason = HTTPStatus(exchange.status).phrase.encode()
        keep_alive = not (self.close_on_error and exchange.status >= 400)
        keep_alive = keep_alive and not any(
            n == b"connection" and v.lower() == b"close" for n, v in request.headers
        )
        if not any(n == b"date" for n, _ in headers):
            headers.append((b"date", email.utils.formatdate(usegmt=True).encode()))
        headers.append((b"connection", b"Keep-Alive" if keep_alive else b"close"))
        if not any(n == b"content-length" for n, _ in headers):
            headers.append((b"content-length", str(len(exchange.body)).encode()))
        # pveproxy writes canonical header names (Content-Type, not content-type)
        headers = [(b"-".join(p.capitalize() for p in n.split(b"-")), v) for n, v in headers]
        data = conn.send(h11.Response(status_code=exchange.status, headers=headers, reason=reason))
        if exchange.body and request.method != b"HEAD":
            data += conn.send(h11.Data(data=bytes(exchange.body)))
        data += conn.send(h11.EndOfMessage())
        writer.write(data)
        await writer.drain()
        return keep_alive
