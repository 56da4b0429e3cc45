"""HTTP request counts and latencies, labelled by route template, never by raw path.

`/api/v1/tenants/6f0c...` is counted as `/api/v1/tenants/{tenant_id}`, a static file as
`/static/{path}`, and a path that matches no route as `unmatched`, so a scanner trying a
million URLs adds one series, not a million. The template comes from the route FastAPI
matched (`scope["route"]`, looked up by identity) or, for mounts and plain Starlette routes,
from the app's route table compiled once.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi.routing import iter_route_contexts
from starlette.routing import Mount, compile_path
from starlette.types import Scope

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


class HttpObserver:
    """Counts one answer under its route template. `EdgeMiddleware` (outermost) calls it,
    so the 413s, 429s and 500s of inner layers are counted too."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._templates: RouteTemplates | None = None

    def _resolve(self, scope: Scope) -> str:
        if self._templates is None:
            routes = getattr(scope.get("app"), "routes", None)
            if routes is None:
                return UNMATCHED
            self._templates = RouteTemplates(list(routes))
        return self._templates.resolve(scope)

    def observe(self, scope: Scope, status: int, seconds: float) -> None:
        self.metrics.observe_http(scope.get("method", "GET"), self._resolve(scope), status, seconds)
