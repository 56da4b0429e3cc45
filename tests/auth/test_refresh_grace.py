"""REFRESH_REUSE_GRACE_S: two tabs refreshing at once keep the session; a late replay does not."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from pydantic import ValidationError

from controlplane.config import Settings
from tests.auth.conftest import PASSWORD, bearer, user_settings
from tests.conftest import ADMIN_TOKEN, flush_audit


@pytest.fixture
def settings(database_url: str) -> Settings:
    return user_settings(database_url, refresh_reuse_grace_s=10)


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/api/v1/auth/refresh", json={"refresh_token": token})


async def test_two_tabs_refreshing_at_once_both_stay_logged_in(
    client: httpx.AsyncClient, user: dict, app: object
) -> None:
    token = user["tokens"]["refresh_token"]
    first, second = await asyncio.gather(refresh(client, token), refresh(client, token))
    assert (first.status_code, second.status_code) == (200, 200), (first.text, second.text)
    successors = {first.json()["refresh_token"], second.json()["refresh_token"]}
    assert len(successors) == 2 and token not in successors
    for successor in successors:  # each tab goes on with its own token
        again = await refresh(client, successor)
        assert again.status_code == 200, again.text
        me = await client.get("/api/v1/auth/me", headers=bearer(again.json()["access_token"]))
        assert me.status_code == 200
    await flush_audit(app)
    entries = (
        await client.get(
            "/api/v1/audit", params={"action": "auth.refresh_grace"}, headers=bearer(ADMIN_TOKEN)
        )
    ).json()["items"]
    assert len(entries) == 1 and entries[0]["target_id"] == user["id"]
    reuses = (
        await client.get(
            "/api/v1/audit", params={"action": "auth.refresh_reuse"}, headers=bearer(ADMIN_TOKEN)
        )
    ).json()["items"]
    assert reuses == []


async def test_a_replay_after_the_grace_period_revokes_the_session(
    client: httpx.AsyncClient, user: dict, app: object
) -> None:
    token = user["tokens"]["refresh_token"]
    successor = (await refresh(client, token)).json()["refresh_token"]
    db = app.state.cp.db  # type: ignore[attr-defined]
    await db.execute(
        "UPDATE refresh_tokens SET used_at = now() - interval '11 seconds'"
        " WHERE user_id = %(id)s AND used_at IS NOT NULL",
        {"id": user["id"]},
    )
    r = await refresh(client, token)
    assert r.status_code == 401 and "already used" in r.json()["error"]["message"]
    assert (await refresh(client, successor)).status_code == 401


async def test_the_grace_period_does_not_outlive_a_logout(
    client: httpx.AsyncClient, user: dict
) -> None:
    token = user["tokens"]["refresh_token"]
    successor = (await refresh(client, token)).json()["refresh_token"]
    r = await client.post("/api/v1/auth/logout", json={"refresh_token": successor})
    assert r.status_code == 204
    assert (await refresh(client, token)).status_code == 401


async def test_the_grace_period_does_not_outlive_a_password_change(
    client: httpx.AsyncClient, user: dict
) -> None:
    token = user["tokens"]["refresh_token"]
    access = (await refresh(client, token)).json()["access_token"]
    r = await client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": "amber-lantern-meadow-77"},
        headers=bearer(access),
    )
    assert r.status_code in (200, 204), r.text
    assert (await refresh(client, token)).status_code == 401


def test_the_grace_period_is_bounded(database_url: str) -> None:
    for bad in (-1, 61):
        with pytest.raises(ValidationError, match="refresh_reuse_grace_s"):
            user_settings(database_url, refresh_reuse_grace_s=bad)
