"""Failed logins are also limited per account (not only per address), and a throttled
account answers exactly like a wrong password, so the limit tells an attacker nothing."""

from __future__ import annotations

from typing import Any

from controlplane.app import create_app
from tests.auth.conftest import PASSWORD, client_for, register, user_settings
from tests.conftest import flush_audit


def _answer(r: Any) -> tuple[int, Any]:
    body = r.json()
    body.pop("request_id", None)
    return r.status_code, body


async def test_failed_logins_are_limited_per_account(database_url: str) -> None:
    app = create_app(user_settings(database_url, login_account_max_failures=3))
    async with app.router.lifespan_context(app):
        async with client_for(app) as c:
            await register(c, "ada@example.com")
            await register(c, "bob@example.com")
        wrong = None
        for n in range(3):  # from three addresses: the per-address limit never trips
            async with client_for(app, f"192.0.2.{n + 1}") as c:
                r = await c.post(
                    "/api/v1/auth/login", json={"email": "ada@example.com", "password": "x" * 12}
                )
                assert r.status_code == 401
                wrong = _answer(r)
        async with client_for(app, "198.51.100.9") as c:
            # Now even the right password gets the wrong-password answer ...
            r = await c.post(
                "/api/v1/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
            )
            assert _answer(r) == wrong
            assert "access_token" not in r.text
            # ... for this account only.
            r = await c.post(
                "/api/v1/auth/login", json={"email": "bob@example.com", "password": PASSWORD}
            )
            assert r.status_code == 200, r.text
        await flush_audit(app)
        db = app.state.cp.db
        reasons = await db.fetch_all(
            "SELECT details->>'reason' AS reason FROM audit_log"
            " WHERE action = 'auth.login_failed' ORDER BY id"
        )
        assert [row["reason"] for row in reasons][-1] == "account_throttled"
        # Once the failures leave the window, the account logs in again.
        await db.execute("UPDATE login_failures SET at = at - interval '1 day'")
        async with client_for(app) as c:
            r = await c.post(
                "/api/v1/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
            )
            assert r.status_code == 200, r.text
