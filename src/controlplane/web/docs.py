"""API docs that work offline and under the CSP.

FastAPI's default Swagger UI loads from a CDN and starts with an inline script. Here the
assets come from the installed `fastapi-offline` package and the page starts Swagger UI
from our own `docs-init.js`, so no `unsafe-inline` is needed.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Control plane API</title>
<link rel="stylesheet" href="/docs-assets/swagger-ui.css">
<link rel="icon" href="/docs-assets/favicon.png"></head>
<body><div id="swagger-ui"></div>
<script src="/docs-assets/swagger-ui-bundle.js"></script>
<script src="/static/docs-init.js"></script></body></html>"""


def install_docs(app: FastAPI) -> None:
    assets = Path(str(resources.files("fastapi_offline").joinpath("static")))
    app.mount("/docs-assets", StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(_PAGE)
