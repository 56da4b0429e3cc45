"""`/api/v1/users` (admin): list with filters, read, disable (locks out at once), enable."""

from __future__ import annotations

import uuid

import httpx

from tests.auth.conftest import bearer, login, register
from tests.conftest import flush_audit


async def _people(client: httpx.AsyncClient, n: int) -> list[dict]:
    return [await register(client, f"person{i}@example.com") for i in range(n)]


async def test_list_filters_and_pages(admin: httpx.AsyncClient, client, app) -> None:
    people = await _people(client, 5)
    await register(client, "zed@other.example")
    db = app.state.cp.db
    await flush_audit(app)  # the audit writer counts its queries too
    before = db.queries_run
    r = await admin.get("/api/v1/users", params={"limit": 2})
    assert db.queries_run - before == 1  # one query for a page and its total
    page = r.json()
    assert r.status_code == 200 and page["total"] == 6 and len(page["items"]) == 2
    assert page["items"][0]["email"] == "zed@other.example"  # newest first
    assert all("password" not in str(item) for item in page["items"])
    r = await admin.get("/api/v1/users", params={"limit": 2, "offset": 4})
    assert len(r.json()["items"]) == 2
    r = await admin.get("/api/v1/users", params={"email": "EXAMPLE.com"})
    assert r.json()["total"] == 5
    r = await admin.get("/api/v1/users", params={"email": "%"})
    assert r.json()["total"] == 0  # the filter is a plain substring, not a LIKE pattern
    await admin.post(f"/api/v1/users/{people[0]['id']}/disable")
    r = await admin.get("/api/v1/users", params={"status": "disabled"})
    assert [u["id"] for u in r.json()["items"]] == [people[0]["id"]]
    assert r.json()["items"][0]["status"] == "disabled"
    r = await admin.get("/api/v1/users", params={"status": "active"})
    assert r.json()["total"] == 5
    r = await admin.get("/api/v1/users", params={"created_since": "2999-01-01T00:00:00Z"})
    assert r.json()["total"] == 0


async def test_invalid_filters_are_422(admin: httpx.AsyncClient) -> None:
    for params in ({"status": "banned"}, {"limit": 0}, {"limit": 201}, {"created_since": "x"}):
        r = await admin.get("/api/v1/users", params=params)
        assert r.status_code == 422, params


async def test_get_one_and_missing(admin: httpx.AsyncClient, client) -> None:
    row = await register(client, "ada@example.com")
    r = await admin.get(f"/api/v1/users/{row['id']}")
    assert r.status_code == 200 and r.json()["email"] == "ada@example.com"
    r = await admin.get(f"/api/v1/users/{uuid.uuid4()}")
    assert r.status_code == 404
    r = await admin.post(f"/api/v1/users/{uuid.uuid4()}/disable")
    assert r.status_code == 404
    r = await admin.get("/api/v1/users/nope")
    assert r.status_code == 422


async def test_needs_the_admin_token(client: httpx.AsyncClient, user: dict) -> None:
    r = await client.get("/api/v1/users")
    assert r.status_code == 401
    r = await client.post(
        f"/api/v1/users/{user['id']}/disable", headers=bearer(user["tokens"]["access_token"])
    )
    assert r.status_code == 403


async def test_disabled_user_is_locked_out_at_once(
    admin: httpx.AsyncClient, client: httpx.AsyncClient, user: dict, app
) -> None:
    tokens = user["tokens"]
    headers = bearer(tokens["access_token"])
    assert (await client.get("/api/v1/auth/me", headers=headers)).status_code == 200
    r = await admin.post(f"/api/v1/users/{user['id']}/disable")
    assert r.status_code == 200 and r.json()["status"] == "disabled"
    # The very next request with the still-unexpired access token fails.
    r = await client.get("/api/v1/auth/me", headers=headers)
    assert r.status_code == 401 and r.json()["error"]["message"] == "access token revoked"
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 401
    r = await client.post(
        "/api/v1/auth/login", json={"email": "ada@example.com", "password": "wrong-password-1"}
    )
    assert r.status_code == 401  # a wrong password says nothing about the account
    r = await client.post(
        "/api/v1/auth/login",
        json={"email": "ada@example.com", "password": "violet-kettle-harbour-42"},
    )
    assert r.status_code == 403 and "disabled" in r.json()["error"]["message"]
    # Disabling again is harmless.
    r = await admin.post(f"/api/v1/users/{user['id']}/disable")
    assert r.status_code == 200
    # Enabled again: a fresh login works, tokens from before the disable stay dead.
    r = await admin.post(f"/api/v1/users/{user['id']}/enable")
    assert r.status_code == 200 and r.json()["status"] == "active"
    assert (await client.get("/api/v1/auth/me", headers=headers)).status_code == 401
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 401
    fresh = await login(client, "ada@example.com")
    r = await client.get("/api/v1/auth/me", headers=bearer(fresh["access_token"]))
    assert r.status_code == 200
    await flush_audit(app)
    r = await admin.get("/api/v1/audit", params={"target_type": "user", "target_id": user["id"]})
    actions = [(e["action"], e["details"].get("changed")) for e in r.json()["items"]]
    assert ("user.disable", True) in actions and ("user.disable", False) in actions
    assert ("user.enable", True) in actions
