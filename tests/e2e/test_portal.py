"""A customer's first hour in the portal, in a real browser against a real server: sign up
(with the registration token the server asks for), log in, create a tenant and watch it
become active without a reload, suspend, resume, open its app through single sign-on,
upgrade through the Stripe stand-in and come back, change the password, log out
everywhere, delete the tenant. axe-core checks every page on the way (0 serious or
critical violations), and one page is checked at 360 px wide, keyboard only."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, Route, expect

from controlplane.projects.schemas import ProjectCreate
from controlplane.sysconfig import service as sysconfig
from controlplane.sysconfig.schemas import SystemSettingsUpdate
from tests.billing.conftest import SK, TIERS, WHSEC, event, invoice, sign, subscription
from tests.billing.fakestripe import FakeStripe, serve
from tests.conftest import ADMIN_TOKEN, SimHandle, make_settings, start_sim
from tests.e2e.conftest import ARTIFACTS, CHROMIUM, LAUNCH_ARGS, ROOT, docs_screenshot_wanted

pytestmark = pytest.mark.browser

BUILD = ROOT / "portal" / "build"
AXE = ROOT / "portal" / "node_modules" / "axe-core" / "axe.min.js"
AXE_SOURCE = AXE.read_text() + "\n;undefined" if AXE.is_file() else ""
# The free tier allows two snapshots: the journey meets the cap with its third.
JOURNEY_TIERS = [{**TIERS[0], "max_snapshots": 2}, *TIERS[1:]]
REGISTRATION_TOKEN = "invite-" + "Qm7pX" * 5
PASSWORD = "correct horse battery staple 42"
NEW_PASSWORD = "another long passphrase 1987"

if not (BUILD / "index.html").is_file() or not AXE.is_file():
    pytest.skip("the portal is not built (make portal)", allow_module_level=True)


@dataclass
class Portal:
    base: str
    app: Any
    sim: SimHandle
    stripe: FakeStripe
    browser: Any
    violations: dict[str, list[str]] = field(default_factory=dict)

    @property
    def db(self) -> Any:
        return self.app.state.cp.db


@pytest.fixture
def portal_extra() -> dict[str, Any]:
    """Settings for the portal's server beyond (or instead of) the defaults; a module overrides
    it (SMTP for the mail suite, a slow node poller for the retry suite)."""
    return {}


@pytest.fixture
async def portal(database_url: str, portal_extra: dict[str, Any]) -> AsyncIterator[Portal]:
    from playwright.async_api import async_playwright

    from controlplane.app import create_app

    sim, sim_server = await start_sim()
    fake = FakeStripe(api_key=SK, prices={"price_basic", "price_pro"})
    stripe_server = serve(fake)
    # The port must be known before the settings (issuer, return URLs): bind first.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    base = f"http://localhost:{port}"
    defaults: dict[str, Any] = {
        "run_workers": True,
        "tenant_poll_seconds": 1.0,
        "node_poll_seconds": 0.5,
        "usage_collect_seconds": 0.5,
        "public_url": base,
        "registration_token": REGISTRATION_TOKEN,
        "rate_limit_auth": "1000/minute",
        "rate_limit_api": "10000/minute",
        "argon2_time_cost": 1,
        "argon2_memory_kib": 8192,
        "argon2_parallelism": 1,
        "stripe_secret_key": SK,
        "stripe_webhook_secret": WHSEC,
        "stripe_api_base": fake.url,
        "portal_dir": str(BUILD),
    }
    settings = make_settings(database_url, **(defaults | portal_extra))  # the extra wins
    app = create_app(settings)
    import uvicorn

    from controlplane.web.server import uvicorn_config

    server = uvicorn.Server(uvicorn_config(app, host="127.0.0.1", port=port))
    task = asyncio.create_task(server.serve())
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            for _ in range(500):
                if server.started or task.done():
                    break
                await asyncio.sleep(0.02)
            if task.done():
                task.result()
            await sysconfig.update_settings(
                app.state.cp.db,
                SystemSettingsUpdate.model_validate({"billing_tiers": JOURNEY_TIERS}),
            )
            async with httpx.AsyncClient(
                base_url=base, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
            ) as admin:
                r = await admin.post("/api/v1/nodes", json=sim.node_body("pve1"))
                assert r.status_code == 201, r.text
                r = await admin.post(
                    "/api/v1/projects",
                    json={
                        "name": "Web app",
                        "slug": "web",
                        "template_vmid": 9000,
                        "ram_mb": 512,
                        "is_default": True,
                    }
                    | (
                        {"self_service": True}
                        if "self_service" in ProjectCreate.model_fields
                        else {}
                    ),
                )
                assert r.status_code == 201, r.text
            yield Portal(base=base, app=app, sim=sim, stripe=fake, browser=browser)
        finally:
            await browser.close()
            server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, timeout=15)
            stripe_server.shutdown()
            stripe_server.server_close()
            await sim_server.close()  # type: ignore[attr-defined]


async def axe(portal: Portal, page: Page, name: str) -> None:
    """Run axe-core on the page; remember its serious and critical violations."""
    # Through the DevTools protocol rather than add_script_tag: the portal's CSP (rightly)
    # refuses an inline script tag, and the check must not switch the CSP off.
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.evaluate(AXE_SOURCE)
    result = await page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".filter(v => v.impact === 'serious' || v.impact === 'critical')"
        ".map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))"
    )
    portal.violations[name] = result


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    with contextlib.suppress(Exception):
        await page.screenshot(path=str(ARTIFACTS / f"portal-{name}.png"), full_page=True)


async def docs_shot(page: Page, name: str) -> None:
    """`CP_DOCS_SCREENSHOT=1`: the README's screenshots of the portal (docs/portal-*.png)."""
    if docs_screenshot_wanted():
        await page.screenshot(path=str(ROOT / "docs" / f"portal-{name}.png"))


async def deliver(base: str, evt: dict[str, Any]) -> None:
    payload = json.dumps(evt)
    async with httpx.AsyncClient(base_url=base) as client:
        r = await client.post(
            "/api/v1/stripe/webhook",
            content=payload,
            headers={"Content-Type": "application/json", "Stripe-Signature": sign(payload)},
        )
    assert r.status_code == 200, r.text


async def test_customer_journey(portal: Portal) -> None:
    context = await portal.browser.new_context(viewport={"width": 1024, "height": 800})
    page = await context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    foreign: list[str] = []
    page.on(
        "request",
        lambda r: foreign.append(r.url) if not r.url.startswith(portal.base) else None,
    )
    base = portal.base
    await _narrow_screen_and_keyboard_only(portal)
    try:
        await _journey(portal, page, base)
    except Exception:
        await shot(page, "failure")
        raise
    finally:
        await context.close()
    bad = {name: found for name, found in portal.violations.items() if found}
    assert bad == {}, f"axe: serious or critical violations: {bad}"
    assert len(portal.violations) >= 12
    csp = [e for e in errors if "Content Security Policy" in e or "Refused" in e]
    assert csp == [], csp
    # Only the control plane, and the two places the user is sent on purpose.
    assert {re.sub(r"^(https?://[^/]+).*", r"\1", u) for u in foreign} <= {
        "https://checkout.stripe.test",
        "https://shop.localhost",
    }, foreign


async def _journey(portal: Portal, page: Page, base: str) -> None:
    # Sign up: the server asks for a registration token, so the form has the field.
    await page.goto(base + "/signup")
    await expect(page.get_by_label("Registration token")).to_be_visible()
    await axe(portal, page, "signup")
    await docs_shot(page, "signup")
    await page.get_by_label("E-mail address").fill("ada@example.com")
    await page.get_by_label("Password").fill("short")
    await page.get_by_label("Registration token").fill(REGISTRATION_TOKEN)
    await page.get_by_role("button", name="Create account").click()
    # The API names the field; the error sits next to it and takes the focus.
    password = page.get_by_label("Password")
    await expect(password).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#password-error")).to_be_visible()
    await expect(password).to_be_focused()
    await axe(portal, page, "signup-errors")
    await password.fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()

    # Log in.
    await expect(page).to_have_url(re.compile(r"/login"))
    await axe(portal, page, "login")
    await page.get_by_label("E-mail address").fill("ada@example.com")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("heading", name="Your tenants")).to_be_visible()
    await expect(page.get_by_text("You have no tenants yet")).to_be_visible()
    await axe(portal, page, "tenants-empty")

    # Create a tenant; it becomes active on the page without a reload.
    await page.get_by_role("link", name="Create a tenant").first.click()
    await expect(page.get_by_label("Address")).to_be_visible()
    if await page.get_by_label("Project").count():  # a control plane that lists projects
        await expect(page.get_by_label("Project")).to_have_value("web")
    await axe(portal, page, "create")
    await docs_shot(page, "create")
    await page.get_by_label("Address").fill("Not valid!")
    await page.get_by_role("button", name="Create").click()
    await expect(page.locator("#subdomain-error")).to_be_visible()
    await page.get_by_label("Address").fill("shop")
    await page.get_by_role("button", name="Create").click()
    await expect(page).to_have_url(re.compile(r"/tenants/[0-9a-f-]{36}$"))
    tenant_url = page.url
    await axe(portal, page, "tenant-provisioning")
    await expect(page.locator("[data-status=active]")).to_be_visible(timeout=30_000)
    await axe(portal, page, "tenant-active")
    await docs_shot(page, "tenant")

    # Usage graphs: give the container an hour of history; once the collector has read it,
    # the page draws the four charts and says the same in its summary table.
    vmid = await portal.db.fetch_val("SELECT vmid FROM tenants WHERE subdomain = 'shop'")
    portal.sim.sim.backdate(vmid, 3600)  # type: ignore[attr-defined]
    async with asyncio.timeout(30):
        while not await portal.db.fetch_val(
            "SELECT count(*) FROM tenant_usage WHERE timeframe = 'hour'"
        ):
            await asyncio.sleep(0.1)
    await page.reload()
    await expect(page.locator("#usage-summary")).to_contain_text("CPU (%)")
    await expect(page.locator(".usage-charts canvas")).to_have_count(4)
    await axe(portal, page, "tenant-usage")
    await page.get_by_label("Timeframe").select_option("month")
    await expect(page.locator("#usage-empty, #usage-summary")).to_be_visible()

    # The lifecycle: a snapshot taken with the keyboard alone (type, Enter) shows ready; a
    # backup; a restart; each operation's progress on the page and its end in words.
    await page.get_by_label("Snapshot name").focus()
    await page.keyboard.type("first")
    await page.keyboard.press("Enter")
    ready = page.locator("#snapshots [data-snapshot=first] [data-status=ready]")
    await expect(ready).to_be_visible(timeout=30_000)
    await expect(page.locator("#operation-line")).to_contain_text("Snapshot taken")
    await page.get_by_role("button", name="Back up now").click()
    await expect(page.locator("#backups [data-status=ready]")).to_be_visible(timeout=30_000)
    await expect(page.locator("#operation-line")).to_contain_text("Backup made")
    await page.get_by_role("button", name="Restart", exact=True).click()
    await expect(page.locator("#operation-line")).to_contain_text("Restarted", timeout=30_000)
    await expect(page.locator("[data-status=active]")).to_be_visible()
    # A second snapshot of the same name: the API's 409 next to the field.
    await page.get_by_label("Snapshot name").fill("first")
    await page.get_by_role("button", name="Take snapshot").click()
    await expect(page.locator("#snapshot-name-error")).to_contain_text("exists")
    # Over the free tier's two snapshots: the 402's message, with the way to billing.
    await page.get_by_label("Snapshot name").fill("second")
    await page.get_by_role("button", name="Take snapshot").click()
    second = page.locator("#snapshots [data-snapshot=second] [data-status=ready]")
    await expect(second).to_be_visible(timeout=30_000)
    await page.get_by_label("Snapshot name").fill("third")
    await page.get_by_role("button", name="Take snapshot").click()
    cap = page.locator("#snapshots [role=alert]")
    await expect(cap).to_contain_text("allows 2 snapshots")
    await expect(cap.get_by_role("link", name="See your plan and upgrade")).to_have_attribute(
        "href", "/billing"
    )
    # Resize: the form starts at the tenant's size and follows it once the change is done.
    await page.get_by_label("Cores").fill("2")
    await page.get_by_role("button", name="Resize").click()
    await expect(page.locator("#operation-line")).to_contain_text("Resized", timeout=30_000)
    await expect(page.get_by_label("Cores")).to_have_value("2")
    await axe(portal, page, "tenant-lifecycle")
    await page.get_by_role("button", name="Restore the backup").click()
    await expect(page.get_by_role("heading", name="Restore this backup?")).to_be_visible()
    await expect(page.get_by_role("button", name="Restore", exact=True)).to_be_disabled()
    await axe(portal, page, "restore-dialog")
    await page.get_by_role("button", name="Cancel").last.click()
    # At 360 px nothing on the tenant page scrolls sideways.
    await page.set_viewport_size({"width": 360, "height": 740})
    assert await page.evaluate("document.documentElement.scrollWidth") <= 360
    await page.set_viewport_size({"width": 1024, "height": 800})

    # Suspend and resume.
    await page.get_by_role("button", name="Suspend").click()
    await expect(page.locator("[data-status=suspended]")).to_be_visible(timeout=20_000)
    await page.get_by_role("button", name="Resume").click()
    await expect(page.locator("[data-status=active]")).to_be_visible(timeout=20_000)

    # The list, with the tenant in it.
    await page.get_by_role("link", name="Tenants", exact=True).click()
    await expect(page.get_by_role("heading", name="Your tenants")).to_be_visible()
    await expect(page.get_by_role("link", name="shop")).to_be_visible()
    await axe(portal, page, "tenants")
    await docs_shot(page, "tenants")
    await page.goto(tenant_url)
    await expect(page.locator("[data-status=active]")).to_be_visible()

    # Open app: the SSO token route, then the tenant's own /sso (stood in for here).
    opened: list[str] = []

    async def tenant_app(route: Route) -> None:
        opened.append(route.request.url)
        await route.fulfill(
            status=200, content_type="text/html", body="<title>shop</title><h1>Hello</h1>"
        )

    await page.route("https://shop.localhost/**", tenant_app)
    await page.get_by_role("button", name="Open app").click()
    await expect(page).to_have_url(re.compile(r"^https://shop\.localhost/sso\?token="))
    token = opened[0].split("token=", 1)[1]
    async with httpx.AsyncClient(base_url=base) as client:
        r = await client.post(
            "/api/v1/sso/redeem", json={"token": token, "audience": "shop.localhost"}
        )
    assert r.status_code == 200, r.text
    assert r.json()["email"] == "ada@example.com"
    await page.goto(tenant_url)
    await expect(page.locator("[data-status=active]")).to_be_visible()

    # Billing: upgrade through Checkout (the Stripe stand-in) and come back.
    await page.get_by_role("link", name="Billing").click()
    await expect(page.get_by_test_id("tier")).to_have_text("Free")
    await axe(portal, page, "billing")

    async def checkout_page(route: Route) -> None:
        await route.fulfill(
            status=200,
            content_type="text/html",
            body=f'<title>Checkout</title><a href="{base}/billing">Pay and return</a>',
        )

    await page.route("https://checkout.stripe.test/**", checkout_page)
    await page.get_by_role("button", name="Upgrade to Basic").click()
    await expect(page).to_have_url(re.compile(r"^https://checkout\.stripe\.test/"))
    customer = await portal.db.fetch_val("SELECT stripe_customer_id FROM billing_accounts")
    user_id = await portal.db.fetch_val("SELECT id FROM users")
    now = int(time.time())
    done = {"id": "cs_e2e", "object": "checkout.session", "customer": customer}
    done |= {"client_reference_id": str(user_id), "subscription": "sub_e2e", "mode": "subscription"}
    await page.get_by_role("link", name="Pay and return").click()
    await expect(page.get_by_text("We are waiting for Stripe")).to_be_visible()
    await deliver(base, event("checkout.session.completed", done, now))
    await deliver(
        base,
        event("customer.subscription.created", subscription("sub_e2e", customer, "active"), now),
    )
    await deliver(base, event("invoice.paid", invoice("sub_e2e", customer), now + 1))
    await expect(page.get_by_text("Payment confirmed")).to_be_visible(timeout=10_000)
    await expect(page.get_by_test_id("tier")).to_have_text("Basic")
    await axe(portal, page, "billing-paid")
    await docs_shot(page, "billing")

    # Account: change the password, then log out everywhere.
    await page.get_by_role("link", name="Account").click()
    await axe(portal, page, "account")
    await docs_shot(page, "account")
    await page.get_by_label("Current password").fill("wrong password entirely")
    await page.get_by_label("New password").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Change password").click()
    await expect(page.locator("#current_password-error")).to_be_visible()
    await expect(page.get_by_label("Current password")).to_be_focused()
    await page.get_by_label("Current password").fill(PASSWORD)
    await page.get_by_label("New password").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Change password").click()
    await expect(page.get_by_text("Your password is changed")).to_be_visible()
    # The session survives a reload (the refresh cookie), with the new password's session.
    await page.reload()
    await expect(page.get_by_role("heading", name="Account")).to_be_visible()
    await page.get_by_role("button", name="Log out everywhere").click()
    await expect(page).to_have_url(re.compile(r"/login\?notice=logged-out"))
    await page.goto(base + "/billing")
    await expect(page).to_have_url(re.compile(r"/login\?next=%2Fbilling"))

    # Back in with the new password; delete the tenant, after confirming.
    await page.get_by_label("E-mail address").fill("ada@example.com")
    await page.get_by_label("Password").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page).to_have_url(base + "/billing")
    await page.goto(tenant_url)
    await page.get_by_role("button", name="Delete…").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_be_visible()
    await axe(portal, page, "delete-dialog")
    await dialog.get_by_role("button", name="Keep it").click()
    await expect(dialog).to_be_hidden()
    await page.get_by_role("button", name="Delete…").click()
    await page.get_by_role("button", name="Delete for good").click()
    await expect(page).to_have_url(base + "/")
    await expect(page.get_by_text("You have no tenants yet")).to_be_visible(timeout=20_000)


async def _narrow_screen_and_keyboard_only(portal: Portal) -> None:
    """At 360 px nothing scrolls sideways, and the login form works with the keyboard."""
    context = await portal.browser.new_context(viewport={"width": 360, "height": 740})
    page = await context.new_page()
    page.set_default_timeout(15_000)
    try:
        for path in ("/login", "/signup", "/forgot-password"):
            await page.goto(portal.base + path)
            await expect(page.locator("h1")).to_be_visible()
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= 360, (path, width)
            await axe(portal, page, f"narrow{path}")
        await page.goto(portal.base + "/login")
        await expect(page.get_by_label("E-mail address")).to_be_visible()
        await page.keyboard.press("Tab")  # the skip link first
        await expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
        await page.keyboard.press("Enter")
        for _ in range(4):
            await page.keyboard.press("Tab")
            if await page.evaluate("document.activeElement.id") == "email":
                break
        await page.keyboard.type("nobody@example.com")
        await page.keyboard.press("Tab")
        await page.keyboard.type("not the password at all")
        await page.keyboard.press("Enter")
        await expect(page.get_by_role("alert")).to_contain_text("Wrong e-mail or password")
    finally:
        await context.close()
