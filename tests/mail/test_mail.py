"""E-mail verification and password reset through the outbox, against a real SMTP server
on loopback; the outbox's claim, retry and restart rules."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from controlplane.mail.sender import MailSender
from tests.auth.conftest import PASSWORD, bearer, client_for, login, register, user_settings
from tests.mail.conftest import Sink, link_token

NEW_PASSWORD = "amber-lantern-rivet-77"


async def wait_for_sent(db: Any) -> dict[str, Any]:
    for _ in range(500):
        row = await db.fetch_one("SELECT kind, sent_at, body FROM mail_outbox")
        if row["sent_at"] is not None:
            return dict(row)
        await asyncio.sleep(0.01)
    raise AssertionError("the sender never recorded the mail as sent")


async def test_sign_up_verify_and_only_then_create_tenants(
    client: httpx.AsyncClient, smtp: tuple[Sink, int], cluster: dict, app: object
) -> None:
    sink, _ = smtp
    r = await client.get("/api/v1/auth/config")
    assert r.json()["email_verification_required"] is True
    assert r.json()["password_reset_available"] is True
    user = await register(client, "ada@example.com")
    assert user["email_verified"] is False
    [mail] = await sink.wait(1)
    assert mail["To"] == "ada@example.com" and "noreply@example.test" in mail["From"]
    token = link_token(mail, "verify-email")
    db = app.state.cp.db  # type: ignore[attr-defined]
    # The sink has the mail as soon as SMTP accepted it; the sender records that just after.
    row = await wait_for_sent(db)
    assert row["kind"] == "verify_email" and row["sent_at"] is not None
    assert row["body"] == ""  # the one-time link is not kept once sent
    stored = await db.fetch_val("SELECT token_hash FROM user_tokens")
    assert token.encode() not in bytes(stored)  # only the hash is stored
    # Not verified yet: logging in works, creating a tenant does not.
    ada = bearer((await login(client, "ada@example.com"))["access_token"])
    r = await client.post("/api/v1/user/tenants", json={"subdomain": "acme"}, headers=ada)
    assert r.status_code == 403 and r.json()["error"]["code"] == "email_not_verified"
    r = await client.post("/api/v1/auth/verify-email", json={"token": token})
    assert r.status_code == 200 and r.json()["email_verified"] is True
    r = await client.post("/api/v1/auth/verify-email", json={"token": token})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_token"
    assert r.json()["error"]["fields"][0]["field"] == "token"
    r = await client.post("/api/v1/user/tenants", json={"subdomain": "acme"}, headers=ada)
    assert r.status_code == 202, r.text
    assert (await client.get("/api/v1/auth/me", headers=ada)).json()["email_verified"] is True
    # Verified: no more verification mails.
    r = await client.post("/api/v1/auth/resend-verification", headers=ada)
    assert r.status_code == 409


async def test_resend_makes_a_new_link_and_bad_tokens_are_refused(
    client: httpx.AsyncClient, smtp: tuple[Sink, int]
) -> None:
    sink, _ = smtp
    await register(client, "ada@example.com")
    ada = bearer((await login(client, "ada@example.com"))["access_token"])
    assert (await client.post("/api/v1/auth/resend-verification")).status_code == 401
    r = await client.post("/api/v1/auth/resend-verification", headers=ada)
    assert r.status_code == 202
    first, second = await sink.wait(2)
    old, new = link_token(first, "verify-email"), link_token(second, "verify-email")
    assert old != new
    for bad in ({"token": "x" * 43}, {"token": ""}, {}, {"token": 5}):
        r = await client.post("/api/v1/auth/verify-email", json=bad)
        assert r.status_code in (400, 422), (bad, r.text)
    r = await client.post("/api/v1/auth/verify-email", json={"token": new})
    assert r.status_code == 200
    # Using one link spends the older one too.
    r = await client.post("/api/v1/auth/verify-email", json={"token": old})
    assert r.status_code == 400


async def test_forgot_and_reset_the_password(
    client: httpx.AsyncClient, smtp: tuple[Sink, int], app: object
) -> None:
    sink, _ = smtp
    await register(client, "ada@example.com")
    await sink.wait(1)  # the verification mail
    session = await login(client, "ada@example.com")
    unknown = await client.post("/api/v1/auth/forgot-password", json={"email": "eve@example.com"})
    known = await client.post("/api/v1/auth/forgot-password", json={"email": "ADA@example.com"})
    assert unknown.status_code == known.status_code == 202
    assert unknown.content == known.content
    [_, mail] = await sink.wait(2)
    assert mail["To"] == "ada@example.com"
    token = link_token(mail, "reset-password")
    db = app.state.cp.db  # type: ignore[attr-defined]
    assert await db.fetch_val("SELECT count(*) FROM mail_outbox") == 2  # none for eve
    # A refused password leaves the token usable.
    r = await client.post(
        "/api/v1/auth/reset-password", json={"token": token, "new_password": "short"}
    )
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "new_password"
    r = await client.post(
        "/api/v1/auth/reset-password", json={"token": token, "new_password": NEW_PASSWORD}
    )
    assert r.status_code == 204, r.text
    # Every session ended.
    r = await client.get("/api/v1/auth/me", headers=bearer(session["access_token"]))
    assert r.status_code == 401
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": session["refresh_token"]})
    assert r.status_code == 401
    r = await client.post("/api/v1/auth/login", json={"email": "ada@example.com",
                                                       "password": PASSWORD})  # fmt: skip
    assert r.status_code == 401
    me = await login(client, "ada@example.com", NEW_PASSWORD)
    r = await client.get("/api/v1/auth/me", headers=bearer(me["access_token"]))
    assert r.json()["email_verified"] is True  # the link proved the address
    r = await client.post(
        "/api/v1/auth/reset-password", json={"token": token, "new_password": NEW_PASSWORD + "x"}
    )
    assert r.status_code == 400  # single use
    for bad in ({"token": token}, {"new_password": NEW_PASSWORD}, {"token": 1, "new_password": 2}):
        r = await client.post("/api/v1/auth/reset-password", json=bad)
        assert r.status_code == 422, bad


async def test_an_existing_address_gets_told_of_a_sign_up_attempt_once_an_hour(
    client: httpx.AsyncClient, smtp: tuple[Sink, int], app: object
) -> None:
    sink, _ = smtp
    await register(client, "ada@example.com")
    for _ in range(3):
        r = await client.post(
            "/api/v1/auth/register", json={"email": "ada@example.com", "password": PASSWORD}
        )
        assert r.status_code in (201, 409)
    messages = await sink.wait(2)
    assert "tried to create an account" in messages[1].get_payload(decode=True).decode()
    db = app.state.cp.db  # type: ignore[attr-defined]
    kinds = await db.fetch_all("SELECT kind FROM mail_outbox ORDER BY id")
    assert [k["kind"] for k in kinds] == ["verify_email", "registration_attempt"]


async def test_refused_mail_is_retried_and_a_dead_sender_s_claim_expires(
    database_url: str, smtp: tuple[Sink, int]
) -> None:
    """The outbox without the app's own sender: two senders, one killed mid-send."""
    from controlplane.app import create_app

    sink, port = smtp
    settings = user_settings(
        database_url, smtp_url=f"smtp://127.0.0.1:{port}", mail_from="noreply@example.test"
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app), client_for(app) as c:
        state = app.state.cp
        await state.mail_sender.stop()  # drive the outbox by hand
        sink.refuse = 1
        await register(c, "ada@example.com")
        db = state.db
        sender = MailSender(db, settings)
        assert await sender.send_due() == 1
        row = await db.fetch_one(
            "SELECT attempts, sent_at, last_error, next_attempt_at > now() AS later"
            " FROM mail_outbox"
        )
        assert row["attempts"] == 1 and row["sent_at"] is None and row["later"]
        assert "451" in row["last_error"]
        assert await sender.send_due() == 0  # backing off
        # A sender claims it and dies before sending: the claim is a lease.
        await db.execute("UPDATE mail_outbox SET next_attempt_at = now()")
        claimed = await db.fetch_all(
            "UPDATE mail_outbox SET attempts = attempts + 1,"
            " next_attempt_at = now() + interval '60 seconds' RETURNING id"
        )
        assert len(claimed) == 1
        assert await sender.send_due() == 0  # someone else's, for now
        await db.execute("UPDATE mail_outbox SET next_attempt_at = now()")  # the lease ran out
        assert await sender.send_due() == 1
        assert len(await sink.wait(1)) == 1
        assert await db.fetch_val("SELECT sent_at IS NOT NULL FROM mail_outbox")
        assert await sender.send_due() == 0


async def test_a_failed_sign_up_records_no_mail(
    client: httpx.AsyncClient, smtp: tuple[Sink, int], app: object
) -> None:
    r = await client.post(
        "/api/v1/auth/register", json={"email": "ada@example.com", "password": "short"}
    )
    assert r.status_code == 422
    db = app.state.cp.db  # type: ignore[attr-defined]
    assert await db.fetch_val("SELECT count(*) FROM mail_outbox") == 0


@pytest.mark.parametrize("overrides", [{}, {"email_verification": "required"}])
async def test_without_smtp(database_url: str, overrides: dict) -> None:
    from controlplane.app import create_app

    app = create_app(user_settings(database_url, **overrides))
    async with app.router.lifespan_context(app), client_for(app) as c:
        config = (await c.get("/api/v1/auth/config")).json()
        assert config["password_reset_available"] is False
        assert config["email_verification_required"] is bool(overrides)
        r = await c.post("/api/v1/auth/forgot-password", json={"email": "ada@example.com"})
        assert r.status_code == 503 and r.json()["error"]["code"] == "password_reset_unavailable"
        await register(c, "ada@example.com")
        ada = bearer((await login(c, "ada@example.com"))["access_token"])
        r = await c.post("/api/v1/auth/resend-verification", headers=ada)
        assert r.status_code == 503


def test_mail_settings_are_checked(database_url: str) -> None:
    from pydantic import ValidationError

    for bad, where in (
        ({"smtp_url": "http://mail.example.test"}, "smtp_url"),
        ({"smtp_url": "smtp://mail.example.test?starttls=maybe", "mail_from": "a@b.test"},
         "smtp_url"),
        ({"smtp_url": "smtp://mail.example.test"}, "MAIL_FROM"),
        ({"email_verification": "sometimes"}, "email_verification"),
    ):  # fmt: skip
        with pytest.raises(ValidationError, match=where):
            user_settings(database_url, **bad)


async def test_expired_tokens_are_pruned(database_url: str, smtp: tuple[Sink, int]) -> None:
    from controlplane.app import create_app

    _sink, port = smtp
    settings = user_settings(
        database_url, smtp_url=f"smtp://127.0.0.1:{port}", mail_from="noreply@example.test"
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app), client_for(app) as c:
        state = app.state.cp
        await register(c, "ada@example.com")
        await register(c, "bob@example.com")
        db = state.db
        assert await db.fetch_val("SELECT count(*) FROM user_tokens") == 2
        await db.execute(  # Ada's link ran out two days ago; Bob's is still good
            "UPDATE user_tokens SET expires_at = now() - interval '2 days' WHERE user_id ="
            " (SELECT id FROM users WHERE email = 'ada@example.com')"
        )
        await MailSender(db, settings).prune_tokens()
        left = await db.fetch_all(
            "SELECT u.email FROM user_tokens t JOIN users u ON u.id = t.user_id"
        )
        assert [r["email"] for r in left] == ["bob@example.com"]
