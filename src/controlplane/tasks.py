"""Ending a worker's in-flight tasks at shutdown, shared by the leased workers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

# A task stuck in a call that ignores cancellation must not hold up exit.
CANCEL_WAIT_S = 5.0


async def finish_or_cancel(tasks: Iterable[asyncio.Task[None]], grace: float) -> None:
    """Let `tasks` finish within `grace` seconds, then cancel the rest and wait for them a
    bounded time. Their leases lapse or are released by the caller, so nothing is lost."""
    running = list(tasks)
    if not running:
        return
    _, pending = await asyncio.wait(running, timeout=grace)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=CANCEL_WAIT_S)
