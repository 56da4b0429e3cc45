"""Fixtures for simulator tests: a fresh simulator and a raw HTTP client to its app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from controlplane.pvesim import (
    DEFAULT_TOKEN_ID,
    DEFAULT_TOKEN_SECRET,
    SimTransport,
    Simulator,
    Token,
    create_app,
)

FAST = {
    t: 0.02
    for t in ("vzclone", "vzstart", "vzstop", "vzshutdown", "vzreboot", "vzdestroy", "vztemplate")
}
ROOT = {"Authorization": f"PVEAPIToken={DEFAULT_TOKEN_ID}={DEFAULT_TOKEN_SECRET}"}
AUDITOR = {"Authorization": "PVEAPIToken=auditor@pve!ro=ro-secret"}
NOBODY = {"Authorization": "PVEAPIToken=nobody@pve!none=none-secret"}


def new_sim(**kwargs: Any) -> Simulator:
    tokens = [
        Token(DEFAULT_TOKEN_ID, DEFAULT_TOKEN_SECRET),
        Token.with_role("auditor@pve!ro", "ro-secret", "PVEAuditor"),
        Token.with_role("nobody@pve!none", "none-secret", "NoAccess"),
    ]
    return Simulator(**{"task_durations": FAST, "tokens": tokens, **kwargs})


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    simulator = new_sim()
    yield simulator
    await simulator.close()


@pytest.fixture
async def api(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    """Raw requests to the simulator, as root's token, base URL at /api2/json."""
    transport = SimTransport(create_app(sim))
    async with httpx.AsyncClient(
        transport=transport, base_url="https://pve.sim:8006/api2/json", headers=ROOT
    ) as client:
        yield client


async def wait_for(predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


async def finish_tasks(sim: Simulator) -> None:
    await wait_for(lambda: all(t.status == "stopped" for t in sim.tasks.values()))
