from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from controlplane.config import Settings
from tests.conftest import make_settings
from tests.webhooks.receiver import Receiver


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(
        database_url,
        webhook_poll_seconds=0.02,
        webhook_retry_base_s=0.05,
        webhook_timeout_s=5.0,
        webhook_concurrency=4,  # one slot per endpoint: a slow one holds one, never all
        webhook_allow_private=True,  # the receivers listen on loopback
        node_poll_seconds=3600.0,
    )


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    if r.hold is not None:
        r.hold.set()
    await r.stop()


async def wait_for(check: Callable[[], Awaitable[Any]], what: str, *, tries: int = 1000) -> Any:
    """Until `check()` returns something truthy (bounded: about 10 s)."""
    for _ in range(tries):
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")
