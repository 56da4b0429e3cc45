"""A tenant that fails while it is set up, in the portal: the failure in plain words (never
a node, VMID or exception text) with **Retry**, and the retry taking it to `active`
without a reload. The failure is real: the project's template is missing from the
simulated node when the worker clones it, and is back before the retry."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from tests.e2e.test_portal import (
    PASSWORD,
    REGISTRATION_TOKEN,
    Portal,
    axe,
    portal,  # noqa: F401 (the fixture)
    shot,
)

pytestmark = pytest.mark.browser

TEMPLATE = 9000


@pytest.fixture
def portal_extra() -> dict[str, Any]:
    # The node poller would notice the template is gone and the tenant would be refused at
    # placement instead of failing in the clone: keep it to its first round.
    return {"node_poll_seconds": 3600.0}


async def test_a_failed_tenant_is_explained_and_retried(
    portal: Portal,  # noqa: F811 (the imported fixture)
) -> None:
    base = portal.base
    async with httpx.AsyncClient(base_url=base) as client:
        r = await client.post(
            "/api/v1/auth/register",
            json={
                "email": "lin@example.com",
                "password": PASSWORD,
                "registration_token": REGISTRATION_TOKEN,
            },
        )
        assert r.status_code == 201, r.text
    context = await portal.browser.new_context(viewport={"width": 1024, "height": 800})
    page = await context.new_page()
    page.set_default_timeout(15_000)
    containers = portal.sim.sim.containers  # type: ignore[attr-defined]
    try:
        await page.goto(base + "/login")
        await page.get_by_label("E-mail address").fill("lin@example.com")
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Log in").click()
        await expect(page.get_by_role("heading", name="Your tenants")).to_be_visible()

        template = containers.pop(TEMPLATE)  # the node still lists it: the clone fails
        await page.goto(base + "/tenants/new")
        await page.get_by_label("Address").fill("shop")
        await page.get_by_role("button", name="Create").click()
        await expect(page).to_have_url(re.compile(r"/tenants/[0-9a-f-]{36}$"))
        await page.evaluate("window.__sameDocument = true")
        await expect(page.locator("[data-status=error]")).to_be_visible(timeout=30_000)
        failure = page.get_by_text("Setting up this tenant failed.")
        await expect(failure).to_be_visible()
        text = await page.locator("main").inner_text()
        assert "template is not available" in text, text
        for internal in ("pve1", str(TEMPLATE), "ProxmoxNotFoundError", "Error:"):
            assert internal not in text, (internal, text)
        await axe(portal, page, "tenant-error")

        containers[TEMPLATE] = template
        await page.get_by_role("button", name="Retry").click()
        await expect(page.locator("[data-status=active]")).to_be_visible(timeout=30_000)
        assert await page.evaluate("window.__sameDocument === true"), "the page reloaded"
    except Exception:
        await shot(page, "retry-failure")
        rows = await portal.db.fetch_all(
            "SELECT status, step, error_step, last_error, attempts FROM tenants"
        )
        print("tenants at failure:", rows)  # what the page should have shown
        raise
    finally:
        await context.close()
    bad = {name: found for name, found in portal.violations.items() if found}
    assert bad == {}, f"axe: serious or critical violations: {bad}"
