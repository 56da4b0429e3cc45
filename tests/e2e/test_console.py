"""The console and the app panel in the portal, in a real browser: log in, open the tenant,
restart its app, open the console (xterm.js over the WebSocket, `pct enter` over the
simulator's SSH), type `echo hello` and read `hello`, under the portal's own CSP, with
axe-core's checks on the page."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import async_playwright, expect

from tests.auth.conftest import PASSWORD
from tests.console.conftest import Plane, node_keys, plane  # noqa: F401 (fixtures)
from tests.console.test_console import sessions_ended
from tests.e2e.conftest import CHROMIUM, LAUNCH_ARGS, SETUP_TOKEN
from tests.e2e.test_portal import AXE_SOURCE, BUILD

pytestmark = pytest.mark.browser


@pytest.fixture
def console_settings() -> dict[str, Any]:
    return {"portal_dir": str(BUILD), "host": "localhost", "setup_token": SETUP_TOKEN}


async def test_console_in_the_portal(plane: Plane) -> None:  # noqa: F811
    ada = await plane.user("ada@example.com")
    tenant = await plane.active_tenant(ada, "ada")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            page = await (
                await browser.new_context(viewport={"width": 1024, "height": 900})
            ).new_page()
            page.set_default_timeout(15_000)
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            foreign: list[str] = []
            page.on(
                "request", lambda r: None if r.url.startswith(plane.base) else foreign.append(r.url)
            )
            page.on(
                "websocket",
                lambda ws: None if ws.url.startswith(plane.ws_base) else foreign.append(ws.url),
            )
            await page.goto(plane.base + "/login")
            await page.get_by_label("E-mail address").fill("ada@example.com")
            await page.get_by_label("Password").fill(PASSWORD)
            await page.get_by_role("button", name="Log in").click()
            await expect(page.get_by_role("heading", name="Your tenants")).to_be_visible()
            await page.goto(f"{plane.base}/tenants/{tenant['id']}")

            # The app panel: the unit's state, a restart kept with its exit status.
            await expect(page.locator("#app-state")).to_have_text(
                re.compile(r"^active \(running\)")
            )
            await page.get_by_role("button", name="Restart app").click()
            await expect(page.get_by_text(re.compile(r"Restart · done \(exit 0\)"))).to_be_visible()
            await page.get_by_role("button", name="Show logs").click()
            await expect(page.get_by_label("Journal of myapp.service")).to_contain_text("myapp")

            # The console: keyboard only, from the button to the shell.
            await page.get_by_role("button", name="Open console").focus()
            await page.keyboard.press("Enter")
            await expect(page.locator("#console-status")).to_have_text("Connected.")
            rows = page.locator(".xterm-rows")
            await expect(rows).to_contain_text("root@ada:~#")
            await page.keyboard.type("echo hello")
            await page.keyboard.press("Enter")
            await expect(rows).to_contain_text(re.compile(r"echo hello\s*hello"))
            await page.evaluate(AXE_SOURCE)
            bad = await page.evaluate(
                "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
                ".filter(v => v.impact === 'serious' || v.impact === 'critical')"
                ".map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))"
            )
            assert bad == [], bad
            await page.keyboard.type("exit")
            await page.keyboard.press("Enter")
            await expect(page.locator("#console-status")).to_have_text(
                "Session ended: session ended (exit 0)."
            )
            await expect(page.get_by_role("button", name="Open console")).to_be_visible()
        finally:
            await browser.close()
    csp = [e for e in errors if "Content Security Policy" in e or "Refused" in e]
    assert csp == [], csp  # xterm's injected styles and the socket pass the portal's CSP
    assert foreign == [], foreign
    rows_ = await sessions_ended(plane)
    assert [r["end_reason"] for r in rows_] == ["exit"] and rows_[0]["bytes_in"] >= len(
        "echo hello\r"
    )


async def test_console_and_app_in_the_dashboard(plane: Plane) -> None:  # noqa: F811
    ada = await plane.user("ada@example.com")
    tenant = await plane.active_tenant(ada, "ada")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            page = await context.new_page()
            page.set_default_timeout(15_000)
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            cdp = await context.new_cdp_session(page)
            await cdp.send("WebAuthn.enable", {"enableUI": False})
            await cdp.send(
                "WebAuthn.addVirtualAuthenticator",
                {"options": {"protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
                             "hasUserVerification": True, "isUserVerified": True,
                             "automaticPresenceSimulation": True}},
            )  # fmt: skip
            await page.goto(plane.base + "/admin")
            await page.fill("#f-setup_token", SETUP_TOKEN)
            await page.fill("#f-admin_name", "alice")
            await page.fill("#f-passkey_name", "virtual key")
            await page.click("#setup-form button[type=submit]")
            await expect(page).to_have_url(plane.base + "/admin")
            await page.goto(f"{plane.base}/admin/tenants/{tenant['id']}")

            await expect(page.locator("#app-state")).to_have_text(
                re.compile(r"^active \(running\)")
            )
            page.once("dialog", lambda d: d.accept())
            await page.get_by_role("button", name="Run migrate").click()
            await expect(page.locator("#tenant-app")).to_contain_text("migrated")
            await page.get_by_role("button", name="Show logs").click()
            await expect(page.locator("#app-journal")).to_contain_text("myapp")

            await page.get_by_role("button", name="Open console").click()
            await expect(page.locator("#console-status")).to_have_text("Connected.")
            rows = page.locator("#console .xterm-rows")
            await expect(rows).to_contain_text("root@ada:~#")
            await page.keyboard.type("echo hello")
            await page.keyboard.press("Enter")
            await expect(rows).to_contain_text(re.compile(r"echo hello\s*hello"))
            await page.get_by_role("button", name="Close console").click()
            await expect(page.get_by_role("button", name="Open console")).to_be_visible()
        finally:
            await browser.close()
    csp = [e for e in errors if "Content Security Policy" in e or "Refused" in e]
    assert csp == [], csp
    [session] = await sessions_ended(plane)
    assert session["end_reason"] == "closed" and session["actor"].startswith("admin:")
