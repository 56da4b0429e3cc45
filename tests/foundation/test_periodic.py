"""The background-round loop stops when asked, even if a round absorbs the cancel."""

from __future__ import annotations

import asyncio
import contextlib

from controlplane.periodic import Periodic


async def test_stop_ends_a_loop_whose_round_absorbed_the_cancel() -> None:
    entered = asyncio.Event()
    rounds = 0

    async def round_that_swallows_cancel() -> None:
        # What a database call can do: the cancel is turned into a normal return.
        nonlocal rounds
        rounds += 1
        entered.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(3600)

    loop = Periodic("test", round_that_swallows_cancel, interval=3600)
    loop.start()
    await entered.wait()
    # Without the stop flag the loop would sleep a whole interval; the timeout is only a
    # guard against hanging the suite, far above any scheduling delay.
    stopping = asyncio.ensure_future(loop.stop())
    done, _ = await asyncio.wait({stopping}, timeout=10)
    assert stopping in done, "stop() waited for the next period"
    assert rounds == 1


async def test_a_failing_round_is_retried_and_stop_cancels_the_wait() -> None:
    calls = 0
    second = asyncio.Event()

    async def failing() -> None:
        nonlocal calls
        calls += 1
        if calls >= 2:
            second.set()
        raise RuntimeError("boom")

    loop = Periodic("test", failing, interval=0.01)
    loop.start()
    await asyncio.wait_for(second.wait(), timeout=30)
    await asyncio.wait_for(loop.stop(), timeout=30)
    assert calls >= 2
