"""The portal's session: the refresh token in an HttpOnly cookie, `logout-all`, and the
public `GET /api/v1/auth/config`."""

from __future__ import annotations

import httpx
import pytest

from controlplane.auth.cookie import COOKIE
from tests.auth.conftest import PASSWORD, bearer, client_for, login, register, user_settings
from tests.conftest import ADMIN_TOKEN, flush_audit

LOGIN = {"email": "ada@example.com", "password": PASSWORD}


async def _cookie_login(client: httpx.AsyncClient) -> httpx.Response:
    await register(client, LOGIN["email"])
    r = await client.post("/api/v1/auth/login", json={**LOGIN, "refresh_in_cookie": True})
    assert r.status_code == 200, r.text
    return r


def _set_cookie(r: httpx.Response) -> str:
    [value] = [v for v in r.headers.get_list("set-cookie") if v.startswith(f"{COOKIE}=")]
    return value


async def test_login_puts_the_refresh_token_in_the_cookie_only(
    client: httpx.AsyncClient,
) -> None:
    r = await _cookie_login(client)
    body = r.json()
    assert body["refresh_token"] is None and body["access_token"]
    assert body["refresh_expires_in"] == 30 * 86400
    header = _set_cookie(r).lower()
    for part in ("httponly", "samesite=strict", "path=/api/v1/auth", "max-age=2592000"):
        assert part in header, header
    assert "secure" not in header  # PUBLIC_URL is http here
    assert client.cookies.get(COOKIE)
    me = await client.get("/api/v1/auth/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200


async def test_json_clients_are_unchanged(client: httpx.AsyncClient) -> None:
    await register(client, LOGIN["email"])
    r = await client.post("/api/v1/auth/login", json=LOGIN)
    assert r.json()["refresh_token"] and "set-cookie" not in r.headers
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": r.json()["refresh_token"]})
    assert r.status_code == 200 and r.json()["refresh_token"] and "set-cookie" not in r.headers


async def test_refresh_by_cookie_rotates_it(client: httpx.AsyncClient) -> None:
    await _cookie_login(client)
    first = client.cookies.get(COOKIE)
    for body in (None, {}):
        r = await client.post("/api/v1/auth/refresh", json=body)
        assert r.status_code == 200, r.text
        assert r.json()["refresh_token"] is None and r.json()["access_token"]
        assert r.headers["cache-control"] == "no-store"
        assert "httponly" in _set_cookie(r).lower()
    rotated = client.cookies.get(COOKIE)
    assert rotated and rotated != first
    # The first cookie was rotated away: presenting it again is reuse, the session ends and
    # the cookie is cleared.
    client.cookies.clear()
    client.cookies.set(COOKIE, first, path="/api/v1/auth")
    r = await client.post("/api/v1/auth/refresh")
    assert r.status_code == 401 and "already used" in r.json()["error"]["message"]
    assert "max-age=0" in _set_cookie(r).lower()
    client.cookies.clear()
    client.cookies.set(COOKIE, rotated, path="/api/v1/auth")
    r = await client.post("/api/v1/auth/refresh")
    assert r.status_code == 401  # revoked with its family


async def test_refresh_without_token_or_cookie_is_401(client: httpx.AsyncClient) -> None:
    for body in (None, {}, {"refresh_token": None}):
        r = await client.post("/api/v1/auth/refresh", json=body)
        assert r.status_code == 401, r.text
        assert "cp_refresh" in r.json()["error"]["message"]
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": 5})
    assert r.status_code == 422
    assert r.json()["error"]["fields"][0]["field"] == "refresh_token"


async def test_the_cookie_is_secure_over_https(database_url: str) -> None:
    from controlplane.app import create_app

    app = create_app(user_settings(database_url, public_url="https://cp.example.test"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
            r = await _cookie_login(c)
            assert "secure" in _set_cookie(r).lower()
            r = await c.post("/api/v1/auth/logout")
            assert "secure" in _set_cookie(r).lower() and "max-age=0" in _set_cookie(r).lower()


async def test_logout_by_cookie_revokes_and_clears_it(client: httpx.AsyncClient) -> None:
    await _cookie_login(client)
    token = client.cookies.get(COOKIE)
    r = await client.post("/api/v1/auth/logout")
    assert r.status_code == 204 and "max-age=0" in _set_cookie(r).lower()
    assert client.cookies.get(COOKIE) is None
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": token})
    assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]
    # Nothing to end is still a logout.
    assert (await client.post("/api/v1/auth/logout")).status_code == 204


async def test_logout_all_ends_every_session(client: httpx.AsyncClient, app: object) -> None:
    await register(client, LOGIN["email"])
    await register(client, "bob@example.com")
    phone = await login(client, LOGIN["email"])
    laptop = await login(client, LOGIN["email"])
    bob = await login(client, "bob@example.com")
    r = await client.post("/api/v1/auth/logout-all", headers=bearer(laptop["access_token"]))
    assert r.status_code == 204 and "max-age=0" in _set_cookie(r).lower()
    for pair in (phone, laptop):
        r = await client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
        assert r.status_code == 401, r.text
        r = await client.get("/api/v1/auth/me", headers=bearer(pair["access_token"]))
        assert r.status_code == 401
    # Someone else's sessions are untouched.
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": bob["refresh_token"]})
    assert r.status_code == 200
    # A new login works.
    assert (await login(client, LOGIN["email"]))["access_token"]
    await flush_audit(app)
    r = await client.get(
        "/api/v1/audit", params={"action": "auth.logout_all"}, headers=bearer(ADMIN_TOKEN)
    )
    [entry] = r.json()["items"]
    assert entry["details"]["revoked"] == 2


async def test_logout_all_needs_an_access_token(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/v1/auth/logout-all")).status_code == 401
    r = await client.post("/api/v1/auth/logout-all", headers=bearer("nope"))
    assert r.status_code == 401


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, {"registration_token_required": False, "billing_enabled": False}),
        (
            {
                "registration_token": "r3g-" + "k" * 20,
                "stripe_secret_key": "sk_test_abc",
                "stripe_webhook_secret": "whsec_abc",
            },
            {"registration_token_required": True, "billing_enabled": True},
        ),
    ],
)
async def test_auth_config(database_url: str, overrides: dict, expected: dict) -> None:
    from controlplane.app import create_app

    app = create_app(user_settings(database_url, **overrides))
    async with app.router.lifespan_context(app), client_for(app) as c:
        r = await c.get("/api/v1/auth/config")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {
        "registration_token_required",
        "email_verification_required",
        "password_reset_available",
        "billing_enabled",
    }
    assert {k: body[k] for k in expected} == expected
