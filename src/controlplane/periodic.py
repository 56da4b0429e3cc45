"""Background rounds: run a coroutine now and then every `interval` seconds until stopped.

The pollers, the route reconciler and the billing sweep all need the same loop: a round that
fails is logged and the next one comes on time, and stopping cancels the wait (or the round)
and returns once the task is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class Periodic:
    def __init__(self, name: str, round: Callable[[], Awaitable[object]], interval: float) -> None:
        self.name = name
        self._round = round
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def _loop(self) -> None:
        while True:
            try:
                await self._round()
            except Exception:
                log.exception("%s round failed; retrying next period", self.name)
            # A cancel that lands inside a database call can be absorbed there (psycopg
            # cancels the query on the server and the round returns normally): without
            # this check the loop would sleep a whole period and `stop` would time out.
            if self._stopping:
                return
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._stopping = True
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
