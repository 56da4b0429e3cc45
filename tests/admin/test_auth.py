"""Passkey setup and login, sessions (expiry, idle timeout, revocation), rate limits."""

from __future__ import annotations

import uuid

import httpx
import pytest

from controlplane.admin.sessions import SESSION_COOKIE
from controlplane.config import Settings
from tests.admin.authenticator import SoftAuthenticator
from tests.admin.conftest import (
    ORIGIN,
    SETUP_TOKEN,
    Browser,
    audit_rows,
    login,
    new_browser,
    register_first,
)
from tests.conftest import make_settings


def _db(app: object):  # type: ignore[no-untyped-def]
    return app.state.cp.db  # type: ignore[attr-defined]


# --- setup token ---------------------------------------------------------------------------


async def test_login_page_offers_setup_until_a_passkey_exists(
    browser: Browser, authenticator: SoftAuthenticator, app: object
) -> None:
    r = await browser.open("/admin/login")
    assert r.status_code == 200
    assert 'data-webauthn="setup"' in r.text and 'data-webauthn="login"' not in r.text
    r = await register_first(browser, authenticator)
    assert r.status_code == 200, r.text
    assert r.json() == {"ok": True, "redirect": "/admin"}
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/admin" in cookie
    assert "Secure" not in cookie  # localhost origin: plain http is allowed
    assert (await browser.open("/admin")).status_code == 200
    async with new_browser(app) as other:
        r = await Browser(other).open("/admin/login")
    assert 'data-webauthn="login"' in r.text and 'data-webauthn="setup"' not in r.text
    actions = await audit_rows(app, "SELECT action, actor FROM audit_log ORDER BY id", expect=2)
    assert [a["action"] for a in actions] == ["admin.setup", "admin.login"]
    assert actions[0]["actor"].startswith("admin:")


async def test_wrong_setup_token_is_refused(
    browser: Browser, authenticator: SoftAuthenticator, app: object
) -> None:
    r = await register_first(browser, authenticator, token="x" * len(SETUP_TOKEN))
    assert r.status_code == 403
    assert r.json()["error"]["fields"][0]["field"] == "setup_token"
    assert await _db(app).fetch_val("SELECT count(*) FROM admin_passkeys") == 0
    r = await browser.post_json("/admin/setup/options", {"setup_token": SETUP_TOKEN})
    assert r.status_code == 422
    assert {f["field"] for f in r.json()["error"]["fields"]} == {"admin_name", "passkey_name"}


async def test_setup_only_once(
    browser: Browser, authenticator: SoftAuthenticator, app: object
) -> None:
    assert (await register_first(browser, authenticator)).status_code == 200
    async with new_browser(app) as http:
        r = await register_first(Browser(http), SoftAuthenticator(ORIGIN, "localhost"))
    assert r.status_code == 409
    assert "already set up" in r.json()["error"]["message"]
    assert await _db(app).fetch_val("SELECT count(*) FROM admin_passkeys") == 1


async def test_two_setups_racing_one_wins(app: object) -> None:
    """Both start before either finishes; the advisory lock lets only one through."""
    async with new_browser(app) as h1, new_browser(app) as h2:
        b1, b2 = Browser(h1), Browser(h2)
        a1, a2 = SoftAuthenticator(ORIGIN, "localhost"), SoftAuthenticator(ORIGIN, "localhost")
        starts = []
        for b, name in ((b1, "one"), (b2, "two")):
            await b.open("/admin/login")
            r = await b.post_json(
                "/admin/setup/options",
                {"setup_token": SETUP_TOKEN, "admin_name": name, "passkey_name": "k"},
            )
            assert r.status_code == 200
            starts.append(r.json())
        r1 = await b1.post_json(
            "/admin/setup/verify",
            {"ticket": starts[0]["ticket"], "credential": a1.create(starts[0]["options"])},
        )
        r2 = await b2.post_json(
            "/admin/setup/verify",
            {"ticket": starts[1]["ticket"], "credential": a2.create(starts[1]["options"])},
        )
    assert sorted([r1.status_code, r2.status_code]) == [200, 409]
    assert await _db(app).fetch_val("SELECT count(*) FROM admin_users") == 1


@pytest.fixture
def no_setup_settings(database_url: str) -> Settings:
    return make_settings(database_url, admin_origin=ORIGIN)


async def test_without_setup_token_the_login_page_explains(
    no_setup_settings: Settings, authenticator: SoftAuthenticator
) -> None:
    from controlplane.app import create_app

    app = create_app(no_setup_settings)
    async with app.router.lifespan_context(app), new_browser(app) as http:
        browser = Browser(http)
        r = await browser.open("/admin/login")
        assert r.status_code == 200
        assert "SETUP_TOKEN" in r.text and 'id="setup-howto"' in r.text
        assert 'data-webauthn="setup"' not in r.text
        r = await register_first(browser, authenticator, token="anything-at-all-long")
        assert r.status_code == 403
        assert "no SETUP_TOKEN" in r.json()["error"]["message"]


async def test_registration_with_wrong_origin_or_rp_is_refused(
    browser: Browser, app: object
) -> None:
    await browser.open("/admin/login")
    for kw in ({"origin": "http://evil.example:8080"}, {"rp_id": "evil.example"}):
        r = await browser.post_json(
            "/admin/setup/options",
            {"setup_token": SETUP_TOKEN, "admin_name": "eve", "passkey_name": "k"},
        )
        start = r.json()
        auth = SoftAuthenticator(ORIGIN, "localhost")
        r = await browser.post_json(
            "/admin/setup/verify",
            {"ticket": start["ticket"], "credential": auth.create(start["options"], **kw)},
        )
        assert r.status_code == 400, r.text
        assert r.json()["error"]["fields"][0]["field"] == "credential"
    # a ticket is good for one try only
    r = await browser.post_json(
        "/admin/setup/verify", {"ticket": start["ticket"], "credential": {"id": "x"}}
    )
    assert r.status_code == 400 and "expired" in r.json()["error"]["message"]
    assert await _db(app).fetch_val("SELECT count(*) FROM admin_passkeys") == 0


# --- login ------------------------------------------------------------------------------


async def test_login_logout_and_revocation(
    dash: Browser, authenticator: SoftAuthenticator, app: object
) -> None:
    r = await dash.post_form("/admin/logout")
    assert r.status_code == 204 and r.headers["hx-redirect"] == "/admin/login"
    r = await dash.open("/admin")
    assert r.status_code == 303 and r.headers["location"].startswith("/admin/login?next=")
    assert (
        await _db(app).fetch_val(
            "SELECT count(*) FROM admin_sessions WHERE revoked_reason = 'logout'"
        )
        == 1
    )

    r = await login(dash, authenticator)
    assert r.status_code == 200, r.text
    assert (await dash.open("/admin")).status_code == 200
    sign_count = await _db(app).fetch_val("SELECT sign_count FROM admin_passkeys")
    assert sign_count == authenticator.sign_count == 1

    # The stolen cookie of a logged-out session opens nothing.
    token = dash.http.cookies.get(SESSION_COOKIE)
    await dash.post_form("/admin/logout")
    async with new_browser(app) as thief:
        thief.cookies.set(SESSION_COOKIE, token)
        r = await thief.get("/admin/nodes", headers={"accept": "text/html"})
        assert r.status_code == 303


async def test_login_with_unknown_or_replayed_passkey_fails(
    dash: Browser, authenticator: SoftAuthenticator, app: object
) -> None:
    await dash.post_form("/admin/logout")
    stranger = SoftAuthenticator(ORIGIN, "localhost")
    stranger.user_handle = b"nobody"
    r = await login(dash, stranger)
    assert r.status_code == 401
    assert "not registered" in r.json()["error"]["message"]

    # A cloned authenticator whose counter went backwards is refused.
    await dash.open("/admin/login")
    start = (await dash.post_json("/admin/login/options", {})).json()
    good = authenticator.get(start["options"])
    r = await dash.post_json("/admin/login/verify", {"ticket": start["ticket"], "credential": good})
    assert r.status_code == 200
    await dash.open("/admin")
    await dash.post_form("/admin/logout")
    authenticator.sign_count = 0  # the clone
    r = await login(dash, authenticator)
    assert r.status_code == 401

    # Without user verification the login is refused.
    authenticator.sign_count = 10
    r = await login(dash, authenticator, uv=False)
    assert r.status_code == 401
    failed = await _db(app).fetch_val(
        "SELECT count(*) FROM admin_login_attempts WHERE outcome = 'failed'"
    )
    assert failed == 3


@pytest.fixture
def strict_settings(database_url: str) -> Settings:
    return make_settings(
        database_url,
        setup_token=SETUP_TOKEN,
        admin_origin=ORIGIN,
        admin_login_max_failures=3,
        admin_session_idle_s=60,
    )


async def test_failed_logins_are_rate_limited(strict_settings: Settings) -> None:
    from controlplane.app import create_app

    app = create_app(strict_settings)
    async with app.router.lifespan_context(app), new_browser(app) as http:
        browser = Browser(http)
        for _ in range(3):
            r = await register_first(
                browser, SoftAuthenticator(ORIGIN, "localhost"), token="w" * 20
            )
            assert r.status_code == 403
        r = await register_first(browser, SoftAuthenticator(ORIGIN, "localhost"))
        assert r.status_code == 429, r.text
        assert 1 <= int(r.headers["retry-after"]) <= 900
        r = await browser.post_json("/admin/login/options", {})
        assert r.status_code == 429
        # the same limits hold on another replica: they are counted in PostgreSQL
        await app.state.cp.db.execute(  # type: ignore[attr-defined]
            "UPDATE admin_login_attempts SET at = at - interval '1 hour'"
        )
        r = await browser.post_json("/admin/login/options", {})
        assert r.status_code == 200


def browser_at(app: object, address: str) -> httpx.AsyncClient:
    """A browser whose connections come from `address`."""
    transport = httpx.ASGITransport(app=app, client=(address, 50000))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_failed_logins_count_per_ipv6_64(strict_settings: Settings) -> None:
    # Rotating addresses inside one /64 (what one subscriber gets) does not reset the count.
    from controlplane.app import create_app

    app = create_app(strict_settings)
    async with app.router.lifespan_context(app):
        for host in range(1, 4):
            async with browser_at(app, f"2001:db8:1:2::{host}") as http:
                r = await register_first(
                    Browser(http), SoftAuthenticator(ORIGIN, "localhost"), token="w" * 20
                )
                assert r.status_code == 403
        async with browser_at(app, "2001:db8:1:2:ffff::9") as http:
            r = await register_first(Browser(http), SoftAuthenticator(ORIGIN, "localhost"))
            assert r.status_code == 429, r.text
        async with browser_at(app, "2001:db8:1:3::1") as http:  # the next /64 is someone else
            r = await register_first(Browser(http), SoftAuthenticator(ORIGIN, "localhost"))
            assert r.status_code == 200, r.text


async def test_wrong_setup_tokens_are_limited_overall(database_url: str) -> None:
    # Many addresses with a few guesses each still run into one limit for the setup token.
    from controlplane.app import create_app

    app = create_app(
        make_settings(
            database_url,
            setup_token=SETUP_TOKEN,
            admin_origin=ORIGIN,
            admin_login_max_failures=3,
            admin_setup_max_failures=4,
        )
    )
    async with app.router.lifespan_context(app):
        for n in range(4):
            async with browser_at(app, f"198.51.100.{n + 1}") as http:
                r = await register_first(
                    Browser(http), SoftAuthenticator(ORIGIN, "localhost"), token="w" * 20
                )
                assert r.status_code == 403
        async with browser_at(app, "203.0.113.7") as http:
            r = await register_first(Browser(http), SoftAuthenticator(ORIGIN, "localhost"))
            assert r.status_code == 429, r.text
            assert "setup token" in r.json()["error"]["message"]
            assert 1 <= int(r.headers["retry-after"]) <= 900
            # Passkey logins are not affected by the setup limit.
            tab = Browser(http)
            await tab.open("/admin/login")
            assert (await tab.post_json("/admin/login/options", {})).status_code == 200


async def test_too_many_started_logins_are_rate_limited(strict_settings: Settings) -> None:
    from controlplane.app import create_app

    app = create_app(strict_settings)
    async with app.router.lifespan_context(app), new_browser(app) as http:
        browser = Browser(http)
        await browser.open("/admin/login")
        codes = [
            (await browser.post_json("/admin/login/options", {})).status_code for _ in range(16)
        ]
    assert codes[:15] == [200] * 15 and codes[15] == 429


# --- sessions -----------------------------------------------------------------------------


async def test_session_expiry_and_idle_timeout(
    dash: Browser, authenticator: SoftAuthenticator, app: object
) -> None:
    db = _db(app)
    await db.execute("UPDATE admin_sessions SET expires_at = now() - interval '1 second'")
    r = await dash.open("/admin/tenants")
    assert r.status_code == 303 and "next=%2Fadmin%2Ftenants" in r.headers["location"]
    r = await dash.hx_get("/admin/tenants")
    assert r.status_code == 401 and r.headers["hx-redirect"] == "/admin/login"
    r = await dash.http.get("/admin/tenants")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"

    assert (await login(dash, authenticator)).status_code == 200
    assert (await dash.open("/admin")).status_code == 200
    await db.execute(
        "UPDATE admin_sessions SET last_seen_at = now() - interval '31 minutes'"
        " WHERE revoked_at IS NULL AND expires_at > now()"
    )
    assert (await dash.open("/admin")).status_code == 303


async def test_background_polls_do_not_keep_a_session_alive(dash: Browser, app: object) -> None:
    db = _db(app)
    await db.execute("UPDATE admin_sessions SET last_seen_at = now() - interval '10 minutes'")
    r = await dash.http.get("/admin/tenants", headers={"HX-Request": "true", "X-Admin-Poll": "1"})
    assert r.status_code == 200
    idle = await db.fetch_val(
        "SELECT now() - last_seen_at > interval '9 minutes' FROM admin_sessions"
    )
    assert idle is True
    assert (await dash.hx_get("/admin/tenants")).status_code == 200
    idle = await db.fetch_val(
        "SELECT now() - last_seen_at > interval '9 minutes' FROM admin_sessions"
    )
    assert idle is False


async def test_session_token_is_stored_hashed(dash: Browser, app: object) -> None:
    token = dash.http.cookies.get(SESSION_COOKIE)
    assert token and len(token) >= 40
    rows = await _db(app).fetch_all("SELECT token_hash, csrf_token FROM admin_sessions")
    assert len(rows) == 1
    assert token.encode() not in bytes(rows[0]["token_hash"])
    assert rows[0]["csrf_token"] == dash.csrf


async def test_secure_cookie_outside_localhost(database_url: str) -> None:
    from controlplane.admin.sessions import cookie_options

    for origin, secure in (
        ("http://localhost:8080", False),
        ("http://admin.localhost:9000", False),
        ("https://cp.example.com", True),
        ("http://cp.example.com", True),
    ):
        s = make_settings(database_url, admin_origin=origin)
        assert cookie_options(s, 60)["secure"] is secure, origin


async def test_host_prefixed_cookies_when_the_dashboard_is_on_https(database_url: str) -> None:
    # Over HTTPS the cookies are `__Host-` cookies (Secure, Path=/, no Domain), which a
    # sibling subdomain (a tenant's app) can neither set nor overwrite.
    from controlplane.app import create_app

    origin = "https://cp.example.test"
    app = create_app(make_settings(database_url, setup_token=SETUP_TOKEN, admin_origin=origin))
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url=origin) as http,
    ):
        browser = Browser(http)
        r = await browser.open("/admin/login")
        pre = r.headers["set-cookie"]
        assert pre.startswith("__Host-cp_admin_pre=")
        r = await register_first(browser, SoftAuthenticator(origin, "cp.example.test"))
        assert r.status_code == 200, r.text
        cookies = r.headers.get_list("set-cookie")
        session = next(c for c in cookies if c.startswith("__Host-cp_admin_session="))
        for attribute in ("Secure", "Path=/;", "HttpOnly", "SameSite=strict"):
            assert attribute.lower() in session.lower() + ";", (attribute, session)
        assert "domain=" not in session.lower()
        assert not any(c.startswith("cp_admin_session=") for c in cookies)
        assert (await browser.open("/admin")).status_code == 200
        r = await browser.post_form("/admin/logout")
        gone = r.headers["set-cookie"]
        assert gone.startswith("__Host-cp_admin_session=") and "secure" in gone.lower()
        assert (await browser.open("/admin")).status_code == 303


# --- passkeys ------------------------------------------------------------------------------


async def _add_passkey(dash: Browser, name: str) -> SoftAuthenticator:
    extra = SoftAuthenticator(ORIGIN, "localhost")
    r = await dash.post_json("/admin/passkeys/options", {"passkey_name": name})
    assert r.status_code == 200, r.text
    start = r.json()
    r = await dash.post_json(
        "/admin/passkeys/verify",
        {"ticket": start["ticket"], "credential": extra.create(start["options"])},
    )
    assert r.status_code == 200, r.text
    return extra


async def test_add_rename_and_remove_passkeys(
    dash: Browser, authenticator: SoftAuthenticator, app: object
) -> None:
    db = _db(app)
    spare = await _add_passkey(dash, "spare key")
    assert spare.user_handle == authenticator.user_handle  # same admin
    rows = await db.fetch_all("SELECT id, name FROM admin_passkeys ORDER BY created_at")
    assert [r["name"] for r in rows] == ["laptop", "spare key"]
    first, second = rows[0]["id"], rows[1]["id"]

    r = await dash.post_form(f"/admin/passkeys/{second}/rename", {"name": "  yubikey  "})
    assert r.status_code == 200 and "yubikey" in r.text
    r = await dash.post_form(f"/admin/passkeys/{second}/rename", {"name": ""})
    assert r.status_code == 422
    assert (
        await dash.post_form(f"/admin/passkeys/{uuid.uuid4()}/rename", {"name": "x"})
    ).status_code == 404

    # Registering the same authenticator twice is refused.
    r = await dash.post_json("/admin/passkeys/options", {"passkey_name": "again"})
    start = r.json()
    excluded = [c["id"] for c in start["options"]["excludeCredentials"]]
    assert len(excluded) == 2
    r = await dash.post_json(
        "/admin/passkeys/verify",
        {"ticket": start["ticket"], "credential": spare.create(start["options"])},
    )
    assert r.status_code == 409

    # A second tab logged in with the spare key; removing the spare ends that session only.
    async with new_browser(app) as http:
        other = Browser(http)
        assert (await login(other, spare)).status_code == 200
        assert (await other.open("/admin")).status_code == 200
        r = await dash.post_form(f"/admin/passkeys/{second}/delete")
        assert r.status_code == 200, r.text
        assert (await other.open("/admin")).status_code == 303
        assert (await login(other, spare)).status_code == 401
    assert (await dash.open("/admin")).status_code == 200

    # Never the last one.
    r = await dash.post_form(f"/admin/passkeys/{first}/delete")
    assert r.status_code == 409 and "last passkey" in r.text
    assert await db.fetch_val("SELECT count(*) FROM admin_passkeys") == 1
    assert (await dash.post_form(f"/admin/passkeys/{uuid.uuid4()}/delete")).status_code == 404

    rows = await audit_rows(
        app,
        "SELECT action FROM audit_log WHERE target_type = 'admin_passkey' ORDER BY id",
        expect=3,
    )
    actions = [r["action"] for r in rows]
    assert actions == ["admin.passkey.create", "admin.passkey.rename", "admin.passkey.delete"]


async def test_removing_the_passkey_of_this_session_logs_out(
    dash: Browser, authenticator: SoftAuthenticator, app: object
) -> None:
    await _add_passkey(dash, "spare")
    current = await _db(app).fetch_val("SELECT id FROM admin_passkeys WHERE name = 'laptop'")
    r = await dash.post_form(f"/admin/passkeys/{current}/delete")
    assert r.status_code == 204 and r.headers["hx-redirect"] == "/admin/login"
    assert (await dash.open("/admin")).status_code == 303


async def test_passkey_endpoints_need_a_session(browser: Browser) -> None:
    await browser.open("/admin/login")
    r = await browser.post_json("/admin/passkeys/options", {"passkey_name": "x"})
    assert r.status_code == 401
    r = await browser.open("/admin/passkeys")
    assert r.status_code == 303


async def test_removing_one_passkey_twice_at_once(
    dash: Browser, authenticator: SoftAuthenticator, app: object
) -> None:
    """The second removal is a 404, not a crash on the row the first one deleted."""
    import asyncio

    from controlplane.admin.passkeys import remove_passkey
    from controlplane.errors import NotFound

    await _add_passkey(dash, "spare one")
    await _add_passkey(dash, "spare two")
    db = _db(app)
    target = await db.fetch_val("SELECT id FROM admin_passkeys WHERE name = 'spare one'")
    results = await asyncio.gather(
        remove_passkey(db, target), remove_passkey(db, target), return_exceptions=True
    )
    assert sorted(type(r).__name__ for r in results) == ["NotFound", "dict"], results
    assert any(isinstance(r, NotFound) for r in results)
    assert await db.fetch_val("SELECT count(*) FROM admin_passkeys") == 2
