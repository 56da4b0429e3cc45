"""Response headers for dashboard pages: never cached, and vary on HX-Request.

Pages show live operator data behind a session, so no browser or proxy may keep a copy;
one URL answers with a full page or an HTMX fragment, so caches must tell them apart.
Static files under /admin/static are left alone.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_HEADERS = [(b"cache-control", b"no-store"), (b"vary", b"HX-Request, Cookie")]


class AdminHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path == "/admin" or path.startswith("/admin/")) or path.startswith(
            "/admin/static/"
        ):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *((k, v) for k, v in _HEADERS if k not in names),
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)
