"""The users suites share the auth suites' fixtures (cheap Argon2, generous limits)."""

from __future__ import annotations

import httpx
import pytest

from tests.auth.conftest import settings, user  # noqa: F401
from tests.conftest import SimHandle, seed_cluster


@pytest.fixture
async def cluster(admin: httpx.AsyncClient, app: object, pve_sim: SimHandle) -> dict:
    """An online node with templates 9000/9001; projects `web` (1024 MB, default), `big`."""
    return await seed_cluster(
        admin, app, pve_sim, node_ram_mb=8192, web_ram_mb=1024, big_ram_mb=2048
    )
