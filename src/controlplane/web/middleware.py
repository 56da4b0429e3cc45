"""Pure ASGI middleware for the HTTP baseline that holds on every response.

Two layers (see `app.py`), so a request pays for two wrappers of `send` instead of seven:
`EdgeMiddleware` outermost (client address, metrics, security headers, request id and
access log, body limit), and `AppErrorsMiddleware` innermost (dashboard headers, the
catcher of unexpected exceptions). CORS and the rate limits sit between them. Being
outermost, the edge's headers land on errors and docs too.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from controlplane.metrics.http import HttpObserver
from controlplane.metrics.registry import Metrics
from controlplane.web.clientip import is_https, parse_networks, resolve_client
from controlplane.web.context import request_id_var

log = logging.getLogger("controlplane.http")


def content_security_policy(*script_hashes: str) -> str:
    """The CSP of every response; the portal's pages add the hashes of their inline
    bootstrap scripts (`'sha256-...'`), and nothing else may run inline."""
    script_src = " ".join(("'self'", *script_hashes))
    return (
        f"default-src 'self'; script-src {script_src}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


CSP = content_security_policy()
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
]
HSTS = (b"strict-transport-security", b"max-age=63072000; includeSubDomains")
_SECURITY_HEADERS_HTTPS = [*SECURITY_HEADERS, HSTS]
_ADMIN_HEADERS = [(b"cache-control", b"no-store"), (b"vary", b"HX-Request, Cookie")]
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def _json_error(status: int, code: str, message: str) -> bytes:
    return json.dumps(
        {
            "error": {"status": status, "code": code, "message": message, "fields": []},
            "request_id": request_id_var.get(),
        }
    ).encode()


async def send_json_error(send: Send, status: int, code: str, message: str) -> None:
    body = _json_error(status, code, message)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def _relative_location(scope: Scope, name: bytes, value: bytes) -> tuple[bytes, bytes]:
    """A Location pointing at the request's own Host, made relative.

    Starlette builds its trailing-slash redirect from the Host header, so a forged Host
    would come back as the redirect's target; a relative Location keeps the client on the
    host it actually reached.
    """
    if name.lower() != b"location":
        return name, value
    host = next((v for k, v in scope.get("headers", []) if k == b"host"), None)
    target = urlsplit(value.decode("latin-1"))
    if host is None or not target.netloc or target.netloc.encode("latin-1") != host:
        return name, value
    relative = urlunsplit(("", "", target.path or "/", target.query, target.fragment))
    return name, relative.encode("latin-1")


class EdgeMiddleware:
    """What every request passes first, in one layer; in order, outermost first:

    - the client address and HTTPS (`web.clientip`; WebSocket connections get these and
      nothing else);
    - request counts and latencies by route template (`metrics.http`);
    - the security headers (HSTS only over HTTPS, directly or through a trusted proxy:
      browsers ignore it over HTTP, and a name without HTTPS must not be pinned to it),
      and a redirect's Location to our own Host made relative;
    - a well-formed `X-Request-ID` taken, or one made, and one JSON log line per request;
    - 413 for bodies over the limit, whether announced by Content-Length or chunked. A
      declared length is checked before the app runs (the server then delivers exactly
      that many bytes). A chunked body is read here, up to the limit, before the app runs
      and is handed on whole: a route that never reads its body must not run with an
      oversized one.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        max_bytes: int,
        trusted_proxies: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.observer = HttpObserver(metrics)
        self.max_bytes = max_bytes
        self.trusted = parse_networks(trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                resolve_client(scope, self.trusted)
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        resolve_client(scope, self.trusted)
        headers = dict(scope["headers"])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        scope["state"]["request_id"] = request_id
        id_header = (b"x-request-id", request_id.encode())
        security = _SECURITY_HEADERS_HTTPS if is_https(scope) else SECURITY_HEADERS
        status: int | None = None

        async def edge_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                answer = [*message.get("headers", []), id_header]
                names = {name.lower() for name, _ in answer}
                answer += [(k, v) for k, v in security if k not in names]
                if status in _REDIRECTS:
                    answer = [_relative_location(scope, k, v) for k, v in answer]
                message["headers"] = answer
            await send(message)

        try:
            await self._limit_body(scope, receive, edge_send, headers)
        finally:
            seconds = time.perf_counter() - started
            client = scope.get("client")
            log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status or 0,
                    "duration_ms": round(seconds * 1000, 2),
                    "client": client[0] if client else None,
                    "request_id": request_id,
                },
            )
            request_id_var.reset(token)
            # 500 is what the client gets if the app dies before it answers.
            self.observer.observe(scope, status or 500, seconds)

    async def _limit_body(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, bytes]
    ) -> None:
        length = headers.get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.max_bytes
            except ValueError:
                await send_json_error(send, 400, "bad_request", "invalid Content-Length header")
                return
            if too_big:
                await self._refuse(send)
                return
            await self.app(scope, receive, send)
            return
        if b"chunked" not in headers.get(b"transfer-encoding", b"").lower():
            await self.app(scope, receive, send)
            return

        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            total += len(body)
            if total > self.max_bytes:
                await self._refuse(send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()  # after the body: wait for the disconnect

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        await send_json_error(
            send,
            413,
            "payload_too_large",
            f"the request body is larger than the limit of {self.max_bytes} bytes",
        )


def _is_admin_page(path: str) -> bool:
    """Dashboard pages (not their static files): live operator data behind a session."""
    return (path == "/admin" or path.startswith("/admin/")) and not path.startswith(
        "/admin/static/"
    )


class AppErrorsMiddleware:
    """The innermost layer: unexpected exceptions become a logged 500 in the common error
    shape, and dashboard pages are never cached and vary on HX-Request.

    Pages show live operator data behind a session, so no browser or proxy may keep a copy;
    one URL answers with a full page or an HTMX fragment, so caches must tell them apart.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        admin = _is_admin_page(scope.get("path", ""))
        started = False

        async def inner_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if admin:
                    names = {name.lower() for name, _ in message.get("headers", [])}
                    message["headers"] = [
                        *message.get("headers", []),
                        *((k, v) for k, v in _ADMIN_HEADERS if k not in names),
                    ]
            await send(message)

        try:
            await self.app(scope, receive, inner_send)
        except Exception:
            log.exception("unhandled error", extra={"path": scope.get("path")})
            if not started:
                await send_json_error(
                    inner_send,
                    500,
                    "internal_error",
                    "internal error; the request id is in the logs",
                )
