"""A browser's password change keeps its refresh token in the cp_refresh cookie."""

from __future__ import annotations

import httpx

from controlplane.auth.cookie import COOKIE
from tests.auth.conftest import PASSWORD, bearer, register

NEW = "a different long passphrase 77"


async def test_password_change_with_refresh_in_cookie(client: httpx.AsyncClient) -> None:
    await register(client, "ada@example.com")
    r = await client.post(
        "/api/v1/auth/login",
        json={"email": "ada@example.com", "password": PASSWORD, "refresh_in_cookie": True},
    )
    old_cookie = client.cookies.get(COOKIE)
    r = await client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": NEW, "refresh_in_cookie": True},
        headers=bearer(r.json()["access_token"]),
    )
    assert r.status_code == 200, r.text
    assert r.json()["refresh_token"] is None and r.json()["access_token"]
    new_cookie = client.cookies.get(COOKIE)
    assert new_cookie and new_cookie != old_cookie
    [header] = [v for v in r.headers.get_list("set-cookie") if v.startswith(f"{COOKIE}=")]
    assert "httponly" in header.lower() and "path=/api/v1/auth" in header.lower()
    # The new cookie refreshes; the one from before the change is revoked.
    assert (await client.post("/api/v1/auth/refresh", json={})).status_code == 200
    client.cookies.set(COOKIE, old_cookie or "", path="/api/v1/auth")
    assert (await client.post("/api/v1/auth/refresh", json={})).status_code == 401


async def test_password_change_without_it_answers_both_tokens(client: httpx.AsyncClient) -> None:
    await register(client, "bob@example.com")
    r = await client.post(
        "/api/v1/auth/login", json={"email": "bob@example.com", "password": PASSWORD}
    )
    r = await client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": NEW},
        headers=bearer(r.json()["access_token"]),
    )
    assert r.status_code == 200 and r.json()["refresh_token"]
    assert "set-cookie" not in r.headers
