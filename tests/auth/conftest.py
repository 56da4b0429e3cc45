"""Fixtures for the user-facing auth suites: cheap Argon2, generous limits, helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from controlplane.config import Settings
from tests.conftest import make_settings

PASSWORD = "violet-kettle-harbour-42"
# Cheap hashing keeps the suite fast; production uses RFC 9106's defaults (see config).
CHEAP_ARGON2 = {"argon2_time_cost": 1, "argon2_memory_kib": 256, "argon2_parallelism": 1}
GENEROUS_LIMITS = {"rate_limit_auth": "1000/minute", "rate_limit_api": "5000/minute"}


def user_settings(database_url: str, **overrides: object) -> Settings:
    return make_settings(database_url, **{**CHEAP_ARGON2, **GENEROUS_LIMITS, **overrides})


@pytest.fixture
def settings(database_url: str) -> Settings:
    return user_settings(database_url)


def client_for(app: object, ip: str = "127.0.0.1", **headers: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=headers)


async def register(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, **extra: Any
) -> dict[str, Any]:
    r = await client.post(
        "/api/v1/auth/register", json={"email": email, "password": password, **extra}
    )
    assert r.status_code == 201, r.text
    return r.json()


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    r = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    return r.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def user(client: httpx.AsyncClient) -> AsyncIterator[dict[str, Any]]:
    """A registered, logged-in user: its row plus `tokens`."""
    row = await register(client, "ada@example.com")
    yield {**row, "tokens": await login(client, "ada@example.com")}
