"""Register, log in, refresh (rotation and reuse), log out, me, change the password."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from tests.auth.conftest import PASSWORD, bearer, client_for, login, register, user_settings
from tests.conftest import ADMIN_TOKEN, flush_audit, wait_until_blocked


async def test_register_login_me(client: httpx.AsyncClient) -> None:
    row = await register(client, "  Ada.Lovelace@Example.COM ")
    assert row["email"] == "ada.lovelace@example.com"
    assert row["status"] == "active" and "password" not in str(row) and "hash" not in str(row)
    tokens = await login(client, "ADA.lovelace@example.com")
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 900 and tokens["refresh_expires_in"] == 30 * 86400
    r = await client.get("/api/v1/auth/me", headers=bearer(tokens["access_token"]))
    assert r.status_code == 200, r.text
    me = r.json()
    assert me["id"] == row["id"] and me["email"] == "ada.lovelace@example.com"
    assert me["last_login_at"] is not None


async def test_login_response_is_not_cached(client: httpx.AsyncClient, user: dict) -> None:
    r = await client.post(
        "/api/v1/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
    )
    assert r.headers["cache-control"] == "no-store"


async def test_password_hashed_with_argon2id(client: httpx.AsyncClient, app: object) -> None:
    row = await register(client, "bob@example.com")
    db = app.state.cp.db  # type: ignore[attr-defined]
    stored = await db.fetch_val(
        "SELECT password_hash FROM users WHERE id = %(id)s", {"id": row["id"]}
    )
    assert stored.startswith("$argon2id$v=19$m=256,t=1,p=1$")
    assert PASSWORD not in stored


async def test_register_does_not_tell_whether_an_email_exists(
    client: httpx.AsyncClient, app: object
) -> None:
    first = await register(client, "ada@example.com")
    other = "amber-lantern-rivet-77"
    again = await client.post(
        "/api/v1/auth/register", json={"email": "ADA@example.com ", "password": other}
    )
    new = await client.post(
        "/api/v1/auth/register", json={"email": "bob@example.com", "password": other}
    )
    # The same status and the same shape of answer for a taken and a new address ...
    assert again.status_code == new.status_code == 201, again.text
    assert set(again.json()) == set(new.json())
    assert again.json()["email"] == "ada@example.com" and again.json()["id"] != first["id"]
    assert again.headers.keys() - {"x-request-id", "content-length"} == (
        new.headers.keys() - {"x-request-id", "content-length"}
    )
    # ... but no second account, and the first one keeps its password.
    db = app.state.cp.db  # type: ignore[attr-defined]
    assert await db.fetch_val("SELECT count(*) FROM users WHERE email = 'ada@example.com'") == 1
    await login(client, "ada@example.com")
    r = await client.post(
        "/api/v1/auth/login", json={"email": "ada@example.com", "password": other}
    )
    assert r.status_code == 401
    # The attempt is in the audit log, under the existing account.
    await flush_audit(app)
    rows = await db.fetch_all(
        "SELECT target_id FROM audit_log WHERE action = 'user.register_existing'"
    )
    assert [str(row["target_id"]) for row in rows] == [first["id"]]


async def test_password_policy_messages(client: httpx.AsyncClient) -> None:
    cases = [
        ("short-1", "at least 12 characters"),
        ("x" * 129 + "abcd", "at most 128 characters"),
        ("aaaaaaaaaaaaaaab", "too few different characters"),
        ("carol@example.com", "e-mail address"),
        ("Carol1234567!", "e-mail address"),
        ("Password123456!", "most common passwords"),
        ("p@ssw0rd2024!!", "most common passwords"),
        ("qwertyuiop1234", "most common passwords"),
    ]
    for password, expected in cases:
        r = await client.post(
            "/api/v1/auth/register", json={"email": "carol@example.com", "password": password}
        )
        assert r.status_code == 422, (password, r.text)
        err = r.json()["error"]
        assert err["fields"] == [{"field": "password", "message": err["message"]}]
        assert expected in err["message"], (password, err["message"])


async def test_invalid_registration_bodies(client: httpx.AsyncClient) -> None:
    for body, field in [
        ({"email": "not-an-email", "password": PASSWORD}, "email"),
        ({"email": "a@b", "password": PASSWORD}, "email"),
        ({"email": "a b@example.com", "password": PASSWORD}, "email"),
        ({"email": "ada@example.com"}, "password"),
        ({"email": "ada@example.com", "password": 123456789012345}, "password"),
        ({"email": "ada@example.com", "password": PASSWORD, "admin": True}, "admin"),
    ]:
        r = await client.post("/api/v1/auth/register", json=body)
        assert r.status_code == 422, (body, r.text)
        assert field in [f["field"] for f in r.json()["error"]["fields"]], r.text


async def test_registration_token(database_url: str) -> None:
    from controlplane.app import create_app

    token = "reg-" + uuid.uuid4().hex
    app = create_app(user_settings(database_url, registration_token=token))
    async with app.router.lifespan_context(app), client_for(app) as c:
        body = {"email": "dan@example.com", "password": PASSWORD}
        r = await c.post("/api/v1/auth/register", json=body)
        assert r.status_code == 403, r.text
        assert "registration_token" in r.json()["error"]["message"]
        r = await c.post("/api/v1/auth/register", json={**body, "registration_token": "nope"})
        assert r.status_code == 403
        r = await c.post("/api/v1/auth/register", json={**body, "registration_token": token + "x"})
        assert r.status_code == 403
        r = await c.post("/api/v1/auth/register", json={**body, "registration_token": token})
        assert r.status_code == 201, r.text


async def test_wrong_email_and_wrong_password_look_the_same(
    client: httpx.AsyncClient, user: dict, app: object
) -> None:
    wrong_pw = await client.post(
        "/api/v1/auth/login", json={"email": "ada@example.com", "password": PASSWORD + "x"}
    )
    no_user = await client.post(
        "/api/v1/auth/login", json={"email": "nobody@example.com", "password": PASSWORD}
    )
    assert wrong_pw.status_code == no_user.status_code == 401
    assert wrong_pw.json()["error"]["message"] == no_user.json()["error"]["message"]
    await flush_audit(app)
    db = app.state.cp.db  # type: ignore[attr-defined]
    rows = await db.fetch_all(
        "SELECT details->>'reason' AS reason FROM audit_log"
        " WHERE action = 'auth.login_failed' ORDER BY id"
    )
    assert [r["reason"] for r in rows] == ["wrong_password", "unknown_email"]


async def test_unknown_email_still_runs_argon2(client: httpx.AsyncClient, app: object) -> None:
    """The dummy hash makes an unknown e-mail cost one verification, like a real one."""
    from controlplane.auth.deps import get_hasher

    hasher = await get_hasher(app.state.cp)  # type: ignore[attr-defined]
    calls = []
    original = hasher.verify

    async def counting(stored: str, password: str) -> bool:
        calls.append(stored)
        return await original(stored, password)

    hasher.verify = counting  # type: ignore[method-assign]
    r = await client.post(
        "/api/v1/auth/login", json={"email": "nobody@example.com", "password": PASSWORD}
    )
    assert r.status_code == 401
    assert len(calls) == 1 and calls[0].startswith("$argon2id$")


async def test_refresh_rotates(client: httpx.AsyncClient, user: dict) -> None:
    first = user["tokens"]
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    r = await client.get("/api/v1/auth/me", headers=bearer(second["access_token"]))
    assert r.status_code == 200
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert r.status_code == 200


async def test_reusing_a_rotated_token_revokes_the_family(
    client: httpx.AsyncClient, user: dict, app: object
) -> None:
    first = user["tokens"]["refresh_token"]
    other_session = (await login(client, "ada@example.com"))["refresh_token"]
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": first})
    second = r.json()["refresh_token"]
    # The thief (or the victim) comes back with the rotated token.
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": first})
    assert r.status_code == 401
    assert "already used" in r.json()["error"]["message"]
    # ...and the token that replaced it is dead too.
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": second})
    assert r.status_code == 401
    # Another session (another family) of the same user is untouched.
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": other_session})
    assert r.status_code == 200
    await flush_audit(app)
    r = await client.get(
        "/api/v1/audit",
        params={"action": "auth.refresh_reuse"},
        headers=bearer(ADMIN_TOKEN),
    )
    entries = r.json()["items"]
    assert len(entries) == 1
    assert entries[0]["target_id"] == user["id"]
    assert entries[0]["details"]["family_revoked"] is True
    assert entries[0]["details"]["revoked"] == 2  # the replayed token and its successor
    assert entries[0]["actor"] == f"user:{user['id']}"


async def test_concurrent_refreshes_one_wins(
    client: httpx.AsyncClient, user: dict, app: object
) -> None:
    token = user["tokens"]["refresh_token"]
    results = await asyncio.gather(
        *(client.post("/api/v1/auth/refresh", json={"refresh_token": token}) for _ in range(2))
    )
    assert sorted(r.status_code for r in results) == [200, 401]
    db = app.state.cp.db  # type: ignore[attr-defined]
    minted = await db.fetch_val(
        "SELECT count(*) FROM refresh_tokens WHERE user_id = %(id)s", {"id": user["id"]}
    )
    assert minted == 2  # the login's token and exactly one successor


async def test_unknown_and_expired_refresh_tokens(
    client: httpx.AsyncClient, user: dict, app: object
) -> None:
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": "made-up"})
    assert r.status_code == 401 and r.json()["error"]["message"] == "invalid refresh token"
    db = app.state.cp.db  # type: ignore[attr-defined]
    await db.execute(
        "UPDATE refresh_tokens SET expires_at = now() - interval '1 second' WHERE user_id = %(id)s",
        {"id": user["id"]},
    )
    r = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": user["tokens"]["refresh_token"]}
    )
    assert r.status_code == 401 and "expired" in r.json()["error"]["message"]
    # `{}` means "use the cp_refresh cookie" (the portal's refresh); without one: 401.
    r = await client.post("/api/v1/auth/refresh", json={})
    assert r.status_code == 401 and "cp_refresh" in r.json()["error"]["message"]


async def test_logout_revokes_the_refresh_token(
    client: httpx.AsyncClient, user: dict, app: object
) -> None:
    token = user["tokens"]["refresh_token"]
    r = await client.post("/api/v1/auth/logout", json={"refresh_token": token})
    assert r.status_code == 204
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": token})
    assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]
    # Logging out twice, or with a token we never issued, changes nothing and says nothing.
    r = await client.post("/api/v1/auth/logout", json={"refresh_token": token})
    assert r.status_code == 204
    r = await client.post("/api/v1/auth/logout", json={"refresh_token": "never-issued"})
    assert r.status_code == 204
    await flush_audit(app)
    db = app.state.cp.db  # type: ignore[attr-defined]
    n = await db.fetch_val("SELECT count(*) FROM audit_log WHERE action = 'auth.logout'")
    assert n == 1


async def test_change_password(client: httpx.AsyncClient, user: dict, app: object) -> None:
    old = user["tokens"]
    second_session = await login(client, "ada@example.com")
    new_password = "amber-lantern-orchard-77"
    headers = bearer(old["access_token"])
    r = await client.post(
        "/api/v1/auth/password",
        json={"current_password": "wrong-password-123", "new_password": new_password},
        headers=headers,
    )
    assert r.status_code == 403
    assert r.json()["error"]["fields"][0]["field"] == "current_password"
    r = await client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": "password123456"},
        headers=headers,
    )
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "new_password"
    r = await client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": PASSWORD},
        headers=headers,
    )
    assert r.status_code == 422
    r = await client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": new_password},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    fresh = r.json()
    # Every earlier token of the user is dead: both sessions' refresh and access tokens.
    for refresh_token in (old["refresh_token"], second_session["refresh_token"]):
        r = await client.post("/api/v1/auth/refresh", json={"refresh_token": refresh_token})
        assert r.status_code == 401
    for access in (old["access_token"], second_session["access_token"]):
        assert (await client.get("/api/v1/auth/me", headers=bearer(access))).status_code == 401
    assert (
        await client.get("/api/v1/auth/me", headers=bearer(fresh["access_token"]))
    ).status_code == 200
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": fresh["refresh_token"]})
    assert r.status_code == 200
    r = await client.post(
        "/api/v1/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
    )
    assert r.status_code == 401
    await login(client, "ada@example.com", new_password)
    db = app.state.cp.db  # type: ignore[attr-defined]
    live = await db.fetch_val(
        "SELECT count(*) FROM refresh_tokens WHERE user_id = %(id)s"
        " AND revoked_reason = 'password_change'",
        {"id": user["id"]},
    )
    assert live == 2


async def test_change_password_needs_a_token(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/v1/auth/password", json={"current_password": PASSWORD, "new_password": PASSWORD}
    )
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")


async def test_rehash_on_login_when_costs_change(database_url: str) -> None:
    from controlplane.app import create_app

    app = create_app(user_settings(database_url))
    async with app.router.lifespan_context(app), client_for(app) as c:
        await register(c, "eve@example.com")
    app = create_app(user_settings(database_url, argon2_time_cost=2))
    async with app.router.lifespan_context(app), client_for(app) as c:
        await login(c, "eve@example.com")
        stored = await app.state.cp.db.fetch_val(  # type: ignore[attr-defined]
            "SELECT password_hash FROM users WHERE email = 'eve@example.com'"
        )
        assert ",t=2," in stored
        await login(c, "eve@example.com")


async def test_logout_also_revokes_a_token_a_concurrent_refresh_adds(
    client: httpx.AsyncClient, user: dict, app: object, database_url: str
) -> None:
    """A rotation holding its token's lock when the logout starts still ends up revoked."""
    import psycopg

    from controlplane.auth.tokens import hash_refresh_token

    token = user["tokens"]["refresh_token"]
    db = app.state.cp.db  # type: ignore[attr-defined]
    async with await psycopg.AsyncConnection.connect(database_url) as rotation:
        # What service.refresh does in its transaction, held open: mark the token used (its
        # row is now locked) and add the successor.
        await rotation.execute(
            "UPDATE refresh_tokens SET used_at = now() WHERE token_hash = %s",
            (hash_refresh_token(token),),
        )
        await rotation.execute(
            "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, token_version,"
            " expires_at) SELECT gen_random_uuid(), user_id, family_id, %s, token_version,"
            " expires_at FROM refresh_tokens WHERE token_hash = %s",
            (hash_refresh_token("successor"), hash_refresh_token(token)),
        )
        logout = asyncio.create_task(
            client.post("/api/v1/auth/logout", json={"refresh_token": token})
        )
        await wait_until_blocked(db, "UPDATE refresh_tokens", "the logout")
        await rotation.commit()
        assert (await logout).status_code == 204
    live = await db.fetch_val(
        "SELECT count(*) FROM refresh_tokens WHERE user_id = %(id)s AND revoked_at IS NULL",
        {"id": user["id"]},
    )
    assert live == 0
