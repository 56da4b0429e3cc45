"""End-to-end fixtures: the whole control plane under uvicorn on loopback, a simulated
Proxmox cluster, and headless Chromium (Debian's) with a virtual WebAuthn authenticator.

The app is served on 127.0.0.1 and browsed as http://localhost:PORT: WebAuthn refuses IP
addresses as relying party ids. The suite skips when /usr/bin/chromium or Playwright is
missing (CI installs both). On failure, screenshots land in test-artifacts/.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SimHandle, make_settings, start_sim

CHROMIUM = "/usr/bin/chromium"
SETUP_TOKEN = "setup-" + "Vb3kW" * 6
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PAGES = ["", "/nodes", "/projects", "/tenants", "/audit", "/settings", "/network"]

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)
try:
    import playwright.async_api  # noqa: F401
except ImportError:  # pragma: no cover
    pytest.skip("playwright is not installed (pip install -e '.[dev]')", allow_module_level=True)


@dataclass
class LivePlane:
    base: str  # http://localhost:PORT
    app: Any
    sim: SimHandle
    setup_token: str = SETUP_TOKEN

    @property
    def db(self) -> Any:
        return self.app.state.cp.db


@pytest.fixture
async def live_plane(database_url: str) -> AsyncIterator[LivePlane]:
    """The app with its workers, served by uvicorn on a socket bound to a free port."""
    import uvicorn

    from controlplane.app import create_app
    from controlplane.web.server import uvicorn_config

    sim, sim_server = await start_sim()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    settings = make_settings(
        database_url,
        setup_token=SETUP_TOKEN,
        admin_origin=f"http://localhost:{port}",
        run_workers=True,
        tenant_poll_seconds=1.0,
        usage_collect_seconds=0.5,
    )
    app = create_app(settings)
    server = uvicorn.Server(uvicorn_config(app, host="127.0.0.1", port=port))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(500):
            if server.started or task.done():
                break
            await asyncio.sleep(0.02)
        if task.done():
            task.result()
        assert server.started, "uvicorn did not start"
        yield LivePlane(base=f"http://localhost:{port}", app=app, sim=sim)
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=15)
        sock.close()
        await sim_server.close()  # type: ignore[attr-defined]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"report_{report.when}", report)


@dataclass
class Chromium:
    page: Any
    cdp: Any
    authenticator_id: str


@pytest.fixture
async def chromium(
    request: pytest.FixtureRequest, live_plane: LivePlane
) -> AsyncIterator[Chromium]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        context = await browser.new_context(viewport={"width": 1280, "height": 860})
        page = await context.new_page()
        page.set_default_timeout(15_000)
        cdp = await context.new_cdp_session(page)
        await cdp.send("WebAuthn.enable", {"enableUI": False})
        added = await cdp.send(
            "WebAuthn.addVirtualAuthenticator",
            {
                "options": {
                    "protocol": "ctap2",
                    "transport": "internal",
                    "hasResidentKey": True,
                    "hasUserVerification": True,
                    "isUserVerified": True,
                    "automaticPresenceSimulation": True,
                }
            },
        )
        try:
            yield Chromium(page, cdp, added["authenticatorId"])
        finally:
            report = getattr(request.node, "report_call", None)
            if report is not None and report.failed:
                await _screenshots(page, live_plane.base, request.node.name)
            await browser.close()


async def _screenshots(page: Any, base: str, name: str) -> None:
    """The page as the test left it, then each dashboard page."""
    ARTIFACTS.mkdir(exist_ok=True)
    with contextlib.suppress(Exception):
        await page.screenshot(path=str(ARTIFACTS / f"{name}-at-failure.png"), full_page=True)
    for path in PAGES:
        with contextlib.suppress(Exception):
            await page.goto(base + "/admin" + path, timeout=5000)
            label = path.strip("/") or "overview"
            await page.screenshot(path=str(ARTIFACTS / f"{name}-{label}.png"), full_page=True)


def docs_screenshot_wanted() -> bool:
    """`CP_DOCS_SCREENSHOT=1` also writes docs/tenants.png (for the README)."""
    return os.environ.get("CP_DOCS_SCREENSHOT") == "1"
