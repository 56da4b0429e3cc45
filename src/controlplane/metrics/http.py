"""HTTP request counts and latencies, labelled by route template, never by raw path.

`/api/v1/tenants/6f0c...` is counted as `/api/v1/tenants/{tenant_id}`, a static file as
`/static/{path}`, and a path that matches no route as `unmatched`, so a scanner trying a
million URLs adds one series, not a million. The template comes from the route FastAPI
matched (`scope["route"]`, looked up by identity) or, for mounts and plain Starlette routes,
from the app's route table compiled once.
"""

from __future__ import annotations

import re
import time
from typing import Any

from fastapi.routing import iter_route_contexts
from starlette.routing import Mount, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from controlplane.metrics.registry import Metrics

UNMATCHED = "unmatched"


class RouteTemplates:
    """Path -> the template of the route that serves it, for one app."""

    def __init__(self, routes: list[Any]) -> None:
        by_id: dict[int, str] = {}
        seen_twice: set[int] = set()
        patterns: list[tuple[re.Pattern[str], str]] = []
        self._keep: list[Any] = []  # the route objects whose ids are keys: alive as long as we are
        for rc in iter_route_contexts(routes):
            route = rc.original_route
            path = rc.path
            if path is None:
                continue
            if isinstance(route, Mount):
                template = path.rstrip("/") + "/{path}"
                regex, _, _ = compile_path(path.rstrip("/") + "/{path:path}")
            else:
                template = path
                regex, _, _ = compile_path(path)
                key = id(route)
                if key in by_id:
                    seen_twice.add(key)
                by_id[key] = template
                self._keep.append(route)
            patterns.append((regex, template))
        for key in seen_twice:  # one route object under two prefixes: the table decides
            del by_id[key]
        self._by_id = by_id
        self._patterns = patterns

    def resolve(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is not None:
            found = self._by_id.get(id(route))
            if found is not None:
                return found
        path = scope.get("path", "")
        for regex, template in self._patterns:
            if regex.match(path):
                return template
        return UNMATCHED


class HttpMetricsMiddleware:
    """Outermost middleware: sees every answer, the 413s, 429s and 500s of inner layers too."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self._templates: RouteTemplates | None = None

    def _resolve(self, scope: Scope) -> str:
        if self._templates is None:
            routes = getattr(scope.get("app"), "routes", None)
            if routes is None:
                return UNMATCHED
            self._templates = RouteTemplates(list(routes))
        return self._templates.resolve(scope)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app dies before it answers

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            self.metrics.observe_http(
                scope.get("method", "GET"),
                self._resolve(scope),
                status,
                time.perf_counter() - started,
            )
