"""An operator's first hour, in a real browser: set up a passkey with the setup token, log
out, log in with the passkey, add a node (checked against the simulated Proxmox), create a
project and a tenant, watch it become active without reloading, suspend it, read its audit
trail."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from tests.conftest import ADMIN_TOKEN, PVE_TOKEN_ID, PVE_TOKEN_SECRET
from tests.e2e.conftest import ROOT, Chromium, LivePlane, docs_screenshot_wanted

pytestmark = pytest.mark.browser


async def _accept_dialogs(dialog: Any) -> None:
    await dialog.accept()


async def test_operator_journey(live_plane: LivePlane, chromium: Chromium) -> None:
    page, base = chromium.page, live_plane.base
    page.on("dialog", _accept_dialogs)  # hx-confirm asks before every tenant action
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    # 1. First passkey, with the setup token.
    await page.goto(base + "/admin")
    await expect(page).to_have_url(re.compile(r"/admin/login\?next="))
    await page.fill("#f-setup_token", live_plane.setup_token)
    await page.fill("#f-admin_name", "alice")
    await page.fill("#f-passkey_name", "virtual key")
    await page.click("#setup-form button[type=submit]")
    await expect(page).to_have_url(base + "/admin")
    await expect(page.locator("header .who")).to_contain_text("alice")
    creds = await chromium.cdp.send(
        "WebAuthn.getCredentials", {"authenticatorId": chromium.authenticator_id}
    )
    assert len(creds["credentials"]) == 1 and creds["credentials"][0]["isResidentCredential"]

    # 2. Log out, 3. log in with the passkey.
    await page.click("header .who button[type=submit]")
    await expect(page).to_have_url(re.compile(r"/admin/login"))
    await expect(page.locator("#login-form")).to_be_visible()
    await page.click("#login-form button[type=submit]")
    await expect(page).to_have_url(base + "/admin")
    await expect(page.locator("h1")).to_have_text("Overview")

    # 4. Add a node; the credentials are checked against the simulated cluster.
    await page.click("nav >> text=Nodes")
    await page.click("text=Add node")
    await page.fill("#f-name", "pve1")
    await page.fill("#f-api_url", live_plane.sim.url)
    await page.fill("#f-pve_node", "pve1")
    await page.fill("#f-token_id", PVE_TOKEN_ID)
    await page.fill("#f-token_secret", "not-the-secret")
    await page.fill("#f-vmid_range_start", "10000")
    await page.fill("#f-vmid_range_end", "10999")
    await page.uncheck("input[name=verify_tls]")
    await page.click("#node-form button[type=submit]")
    # a refused token: the error appears next to the field, the form keeps its values
    await expect(page.locator('[data-error-for="token_id"]')).to_contain_text("refused")
    await expect(page.locator("#f-name")).to_have_value("pve1")
    await page.fill("#f-token_secret", PVE_TOKEN_SECRET)
    await page.click("#node-form button[type=submit]")
    await expect(page).to_have_url(base + "/admin/nodes")
    row = page.locator("#nodes-table tr", has_text="pve1")
    await expect(row).to_contain_text("online")

    # 5. A project (the default one).
    await page.click("nav >> text=Projects")
    await page.click("text=Create project")
    await page.fill("#f-name", "Web")
    await page.fill("#f-slug", "web")
    await page.fill("#f-template_vmid", "9000")
    await page.fill("#f-ram_mb", "512")
    await page.check("input[name=is_default]")
    await page.click("#project-form button[type=submit]")
    await expect(page).to_have_url(base + "/admin/projects")
    await expect(page.locator("#projects-table")).to_contain_text("default")

    # 6. A tenant; its page follows it to `active` by itself.
    await page.click("nav >> text=Tenants")
    await page.click("text=Create tenant")
    await page.fill("#f-subdomain", "acme")
    await page.click("#tenant-form button[type=submit]")
    await expect(page).to_have_url(re.compile(r"/admin/tenants/[0-9a-f-]{36}$"))
    await page.evaluate("window.__sameDocument = true")  # gone if the page reloads
    await expect(page.locator("#tenant-status")).to_have_text("active", timeout=30_000)
    assert await page.evaluate("window.__sameDocument === true"), "the page reloaded"
    await expect(page.locator("#tenant-detail")).not_to_contain_text("updating live")
    tenant_url = page.url

    # Its usage graphs: an hour of history in the simulator; once the collector has read
    # it, the page draws four charts (uPlot under the dashboard's CSP), and so does the node's.
    db = live_plane.app.state.cp.db
    vmid = await db.fetch_val("SELECT vmid FROM tenants WHERE subdomain = 'acme'")
    live_plane.sim.sim.backdate(vmid, 3600)  # type: ignore[attr-defined]
    async with asyncio.timeout(30):
        while not await db.fetch_val("SELECT count(*) FROM tenant_usage WHERE timeframe = 'hour'"):
            await asyncio.sleep(0.1)
    await page.reload()
    await expect(page.locator(".usage-charts canvas")).to_have_count(4)
    await expect(page.locator(".usage-summary")).to_contain_text("CPU (%)")
    await page.click("nav >> text=Nodes")
    await page.click("#nodes-table >> text=pve1")
    await expect(page.locator(".usage-charts canvas")).to_have_count(4, timeout=30_000)
    await page.goto(tenant_url)

    # Its lifecycle panel: a snapshot through the form turns ready in place, by the tenant's
    # live events; a name taken is refused next to its field; a backup likewise.
    panel = page.locator("#tenant-lifecycle")
    await expect(panel).to_contain_text("No snapshots.")
    await page.evaluate("window.__sameDocument = true")
    await page.fill("#f-snap_name", "first")
    await panel.locator("button", has_text="Take snapshot").click()
    ready = panel.locator('[data-snapshot="first"] .badge')
    await expect(ready).to_have_text("ready", timeout=30_000)
    await expect(page.locator("#lifecycle-operation")).to_contain_text("succeeded")
    await page.fill("#f-snap_name", "first")
    await panel.locator("button", has_text="Take snapshot").click()
    await expect(page.locator('[data-error-for="snap_name"]')).to_contain_text("exists")
    await panel.locator("button", has_text="Back up now").click()
    await expect(panel.locator("[data-backup] .badge")).to_have_text("ready", timeout=30_000)
    assert await page.evaluate("window.__sameDocument === true"), "the page reloaded"

    # 7. Suspend it from the list, and watch the row change in place.
    await page.click("nav >> text=Tenants")
    await page.evaluate("window.__sameDocument = true")
    row = page.locator("#tenants-table tr", has_text="acme")
    await expect(row).to_contain_text("active")
    await row.locator('button[data-action="suspend"]').click()
    await expect(row.locator(".badge")).to_have_text("suspended", timeout=30_000)
    assert await page.evaluate("window.__sameDocument === true"), "the page reloaded"
    await expect(row.locator('button[data-action="resume"]')).to_be_visible()

    if docs_screenshot_wanted():
        await _docs_screenshot(live_plane, page)

    # 8. Its audit trail: who did what, with the admin's name.
    await page.goto(tenant_url)
    trail = page.locator("#tenant-audit")
    await expect(trail).to_contain_text("tenant.create")
    await expect(trail).to_contain_text("tenant.suspend")
    await expect(trail.locator("tr", has_text="tenant.suspend")).to_contain_text("alice")
    await page.click("nav >> text=Audit")
    await page.fill("#a-action", "admin.login")
    await page.click("#audit-filters button[type=submit]")
    await expect(page.locator("#audit-table")).to_contain_text("2 entries")

    assert not [e for e in errors if "Content Security Policy" in e], errors


async def _docs_screenshot(plane: LivePlane, page: Any) -> None:
    """A few more tenants in different states, then the tenants page for the README."""
    async with httpx.AsyncClient(
        base_url=plane.base, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    ) as api:
        project = (await api.get("/api/v1/projects")).json()["items"][0]["id"]
        for sub in ("globex", "initech", "umbrella"):
            r = await api.post("/api/v1/tenants", json={"project_id": project, "subdomain": sub})
            assert r.status_code == 202, r.text
    await page.reload()
    row = page.locator("#tenants-table tr", has_text="initech")
    await expect(row.locator(".badge")).to_have_text("active", timeout=30_000)
    await page.screenshot(
        path=str(ROOT / "docs" / "tenants.png"), clip={"x": 0, "y": 0, "width": 1280, "height": 540}
    )


async def _first_passkey(page: Any, plane: LivePlane) -> None:
    await page.goto(plane.base + "/admin")
    await page.fill("#f-setup_token", plane.setup_token)
    await page.fill("#f-admin_name", "alice")
    await page.fill("#f-passkey_name", "virtual key")
    await page.click("#setup-form button[type=submit]")
    await expect(page).to_have_url(plane.base + "/admin")


async def _seed(plane: LivePlane, api: httpx.AsyncClient) -> str:
    r = await api.post("/api/v1/nodes", json=plane.sim.node_body("pve1"))
    assert r.status_code == 201, r.text
    body = {"name": "Web", "slug": "web", "template_vmid": 9000, "ram_mb": 512}
    r = await api.post("/api/v1/projects", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def test_pages_follow_live_events_not_the_poll(
    live_plane: LivePlane, chromium: Chromium, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Changes made through the API show on open pages at once, with the polls made ten
    minutes long: only the event stream (/admin/events) can explain them."""
    from controlplane.admin.web import templates

    globals_ = templates().env.globals
    monkeypatch.setitem(globals_, "POLL_MS", 600_000)
    monkeypatch.setitem(globals_, "IDLE_POLL_MS", 600_000)
    page, base = chromium.page, live_plane.base
    await _first_passkey(page, live_plane)
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    ) as api:
        project = await _seed(live_plane, api)
        # The tenants list is open (empty) when a tenant is created through the API.
        await page.goto(base + "/admin/tenants")
        poller = page.locator("#tenants-table [data-poll]")
        assert "every 600000ms" in (await poller.get_attribute("hx-trigger") or "")
        await expect(page.locator("html[data-live=on]")).to_be_attached()
        await page.evaluate("window.__sameDocument = true")
        r = await api.post("/api/v1/tenants", json={"project_id": project, "subdomain": "acme"})
        assert r.status_code == 202, r.text
        tenant = r.json()["id"]
        row = page.locator("#tenants-table tr", has_text="acme")
        await expect(row.locator(".badge")).to_have_text("active", timeout=30_000)

        # The tenant's page (final status) when it is suspended through the API.
        await page.goto(f"{base}/admin/tenants/{tenant}")
        await expect(page.locator("html[data-live=on]")).to_be_attached()
        await page.evaluate("window.__sameDocument = true")
        r = await api.post(f"/api/v1/tenants/{tenant}/suspend")
        assert r.status_code == 202, r.text
        await expect(page.locator("#tenant-status")).to_have_text("suspended", timeout=30_000)
        assert await page.evaluate("window.__sameDocument === true"), "the page reloaded"

        # Without the stream the page falls back to polling (made quick here to see it).
        monkeypatch.setitem(globals_, "POLL_MS", 300)
        monkeypatch.setitem(globals_, "IDLE_POLL_MS", 300)
        await page.route("**/admin/events", lambda route: route.abort())
        await page.goto(base + "/admin/tenants")
        await expect(page.locator("html[data-live=off]")).to_be_attached()
        r = await api.post("/api/v1/tenants", json={"project_id": project, "subdomain": "globex"})
        assert r.status_code == 202, r.text
        await expect(page.locator("#tenants-table tr", has_text="globex")).to_be_visible()
