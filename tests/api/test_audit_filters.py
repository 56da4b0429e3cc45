"""Text filters of list endpoints: a NUL byte (which PostgreSQL text cannot hold) is a 422
naming the filter, never a 500."""

from __future__ import annotations

import httpx
import pytest


@pytest.mark.parametrize("name", ["actor", "action", "target_type", "target_id"])
async def test_audit_filters_refuse_nul(admin: httpx.AsyncClient, name: str) -> None:
    r = await admin.get("/api/v1/audit", params={name: "a\x00b"})
    assert r.status_code == 422, r.text
    assert [f["field"] for f in r.json()["error"]["fields"]] == [name]
    assert (await admin.get("/api/v1/audit", params={name: "ab"})).status_code == 200


async def test_user_e_mail_filter_refuses_nul(admin: httpx.AsyncClient) -> None:
    r = await admin.get("/api/v1/users", params={"email": "a\x00b"})
    assert r.status_code == 422, r.text
    assert [f["field"] for f in r.json()["error"]["fields"]] == ["email"]
    assert (await admin.get("/api/v1/users", params={"email": "ab"})).status_code == 200
