"""The portal's e-mail flows in a real browser, through real mail: the server sends to an
SMTP server on loopback (aiosmtpd), the test reads each message it received and opens its
link in the browser. Sign up, log in before confirming (allowed: EMAIL_VERIFICATION gates
creating tenants, not logging in), confirm from the mail; forget the password, reset it
from the mail, log in with the new one, and see the session of another browser end."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from email.message import Message
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.e2e.test_portal import (
    NEW_PASSWORD,
    PASSWORD,
    REGISTRATION_TOKEN,
    Portal,
    axe,
    portal,  # noqa: F401 (the fixture, with portal_extra below)
    shot,
)
from tests.mail.conftest import Sink

pytestmark = pytest.mark.browser

EMAIL = "grace@example.com"


@pytest.fixture
async def smtp_sink() -> AsyncIterator[tuple[Sink, int]]:
    sink = Sink()
    loop = asyncio.get_running_loop()
    from aiosmtpd.smtp import SMTP

    server = await loop.create_server(lambda: SMTP(sink, hostname="mx.test"), "127.0.0.1", 0)
    yield sink, server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


@pytest.fixture
def portal_extra(smtp_sink: tuple[Sink, int]) -> dict[str, Any]:
    # EMAIL_VERIFICATION is left unset: with SMTP configured it defaults to required.
    return {
        "smtp_url": f"smtp://127.0.0.1:{smtp_sink[1]}?starttls=off",
        "mail_from": "Control plane <noreply@example.test>",
    }


def mailed_links(messages: list[Message], base: str, path: str) -> list[str]:
    """The links to `path` in the mails to EMAIL, oldest first (one per mail)."""
    found = []
    for message in messages:
        if message["To"] != EMAIL:
            continue
        body = message.get_payload(decode=True)
        assert isinstance(body, bytes)
        links = re.findall(rf"{re.escape(base)}/{path}\?token=[A-Za-z0-9_-]+", body.decode())
        assert len(links) <= 1, links
        found += links
    return found


async def log_in(page: Page, base: str, password: str) -> None:
    await page.goto(base + "/login")
    await page.get_by_label("E-mail address").fill(EMAIL)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Log in").click()


async def test_verify_and_reset_through_mail(
    portal: Portal,  # noqa: F811 (the imported fixture)
    smtp_sink: tuple[Sink, int],
) -> None:
    sink = smtp_sink[0]
    context = await portal.browser.new_context(viewport={"width": 1024, "height": 800})
    page = await context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    other = await portal.browser.new_context(viewport={"width": 1024, "height": 800})
    try:
        await _verify(portal, page, sink)
        await _reset(portal, page, await other.new_page(), sink)
    except Exception:
        await shot(page, "mail-failure")
        raise
    finally:
        await other.close()
        await context.close()
    bad = {name: found for name, found in portal.violations.items() if found}
    assert bad == {}, f"axe: serious or critical violations: {bad}"
    csp = [e for e in errors if "Content Security Policy" in e or "Refused" in e]
    assert csp == [], csp


async def _verify(plane: Portal, page: Page, sink: Sink) -> None:
    base = plane.base
    await page.goto(base + "/signup")
    await page.get_by_label("E-mail address").fill(EMAIL)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_label("Registration token").fill(REGISTRATION_TOKEN)
    await page.get_by_role("button", name="Create account").click()
    await expect(page.get_by_text("Almost there: we sent a link")).to_be_visible()
    [first_link] = mailed_links(await sink.wait(1), base, "verify-email")

    # Not confirmed yet: logging in works, creating a tenant is refused in plain words.
    await log_in(page, base, PASSWORD)
    await expect(page.get_by_role("heading", name="Your tenants")).to_be_visible()
    await page.goto(base + "/tenants/new")
    await page.get_by_label("Address").fill("grace")
    await page.get_by_role("button", name="Create").click()
    await expect(page.get_by_role("alert")).to_contain_text("Confirm your e-mail address first")
    assert await plane.db.fetch_val("SELECT count(*) FROM tenants") == 0
    await page.get_by_role("link", name="Send the link again").click()
    await expect(page.get_by_test_id("email-verified")).to_have_text("Not yet")
    await axe(plane, page, "account-unconfirmed")
    await page.get_by_role("button", name="Send the link again").click()
    await expect(page.get_by_text("A new link is on its way")).to_be_visible()
    first, link = mailed_links(await sink.wait(2), base, "verify-email")
    assert first == first_link and link != first

    # The link from the mail, opened in the browser.
    await page.goto(link)
    await expect(page.get_by_text("Your e-mail address is confirmed.")).to_be_visible()
    await axe(plane, page, "verify-email")
    verified = await plane.db.fetch_val(
        "SELECT email_verified_at IS NOT NULL FROM users WHERE email = %(e)s", {"e": EMAIL}
    )
    assert verified is True
    await page.get_by_role("link", name="Go to your tenants").click()
    await page.get_by_role("link", name="Account").click()
    await expect(page.get_by_test_id("email-verified")).to_have_text("Yes")
    # Now the tenant can be created.
    await page.goto(base + "/tenants/new")
    await page.get_by_label("Address").fill("grace")
    await page.get_by_role("button", name="Create").click()
    await expect(page).to_have_url(re.compile(r"/tenants/[0-9a-f-]{36}$"))

    # The link works once, and using it spent the older one too.
    for used in (link, first_link):
        await page.goto(used)
        await expect(page.get_by_role("alert")).to_contain_text("already used")
    await axe(plane, page, "verify-email-used")


async def _reset(plane: Portal, page: Page, other: Page, sink: Sink) -> None:
    base = plane.base
    # Another device with a session of its own; the reset must end it.
    other.set_default_timeout(15_000)
    await log_in(other, base, PASSWORD)
    await expect(other.get_by_role("heading", name="Your tenants")).to_be_visible()

    await page.goto(base + "/account")
    await page.get_by_role("button", name="Log out", exact=True).click()
    await expect(page).to_have_url(re.compile(r"/login$"))
    await page.get_by_role("link", name="Forgot your password?").click()
    # The login page's field has the same label: fill only once the new page is there.
    await expect(page.get_by_role("heading", name="Forgot your password?")).to_be_visible()
    await page.get_by_label("E-mail address").fill(EMAIL)
    await page.get_by_role("button", name="Send the link").click()
    await expect(page.get_by_text("we sent it a link to choose a new password")).to_be_visible()
    await axe(plane, page, "forgot-password-sent")
    messages = await sink.wait(3)
    [link] = mailed_links(messages, base, "reset-password")
    assert [m["Subject"] for m in messages] == [
        *["Confirm your e-mail address"] * 2,
        "Reset your password",
    ]

    await page.goto(link)
    await axe(plane, page, "reset-password")
    await page.get_by_label("New password").fill("short")
    await page.get_by_role("button", name="Set the password").click()
    await expect(page.locator("#new_password-error")).to_be_visible()  # the token survives
    await page.get_by_label("New password").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Set the password").click()
    await expect(page).to_have_url(re.compile(r"/login\?notice=reset$"))
    await expect(page.get_by_text("Your password is changed")).to_be_visible()

    await log_in(page, base, PASSWORD)
    await expect(page.get_by_role("alert")).to_contain_text("Wrong e-mail or password")
    await log_in(page, base, NEW_PASSWORD)
    await expect(page.get_by_role("heading", name="Your tenants")).to_be_visible()

    # The other device's session is over: its next call is refused, and its refresh too.
    await other.get_by_role("link", name="Billing").click()
    await expect(other).to_have_url(re.compile(r"/login\?next=%2Fbilling$"))
    await other.reload()
    await expect(other).to_have_url(re.compile(r"/login"))
    await expect(other.get_by_role("button", name="Log in")).to_be_visible()

    # The reset link works once.
    await page.goto(link)
    await page.get_by_label("New password").fill("yet another long passphrase")
    await page.get_by_role("button", name="Set the password").click()
    await expect(page.get_by_role("alert")).to_contain_text("already used")
