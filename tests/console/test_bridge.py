"""The bridge alone, with stand-ins for both sides: backpressure, both ways of ending,
control messages."""

from __future__ import annotations

import asyncio
from typing import Any

from controlplane.console.bridge import CHUNK, Bridge, parse_control


class Flood:
    """A terminal that has output without end, and counts what was read from it."""

    def __init__(self) -> None:
        self.reads = 0
        self.closed = False
        self.written: list[bytes] = []
        self.sizes: list[tuple[int, int]] = []

    async def read(self, n: int) -> bytes:
        self.reads += 1
        await asyncio.sleep(0)
        return b"y" * n

    async def write(self, data: bytes) -> None:
        self.written.append(data)

    def resize(self, cols: int, rows: int) -> None:
        self.sizes.append((cols, rows))

    def close(self) -> None:
        self.closed = True

    def exit_status(self) -> int | None:
        return None


class StuckBrowser:
    """A browser that never finishes taking the first frame (a stalled connection)."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.sending = asyncio.Event()
        self.closed: tuple[int, str] | None = None

    async def receive(self) -> dict[str, Any]:
        return await self.inbox.get()

    async def send_bytes(self, data: bytes) -> None:
        self.sending.set()
        await asyncio.Event().wait()  # never returns

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)


async def test_a_slow_browser_stops_reading_from_ssh() -> None:
    terminal, browser = Flood(), StuckBrowser()
    bridge = Bridge(browser, terminal, idle_timeout=3600, queue_chunks=4)
    run = asyncio.create_task(bridge.run())
    await asyncio.wait_for(browser.sending.wait(), 5)
    for _ in range(200):  # give the reader every chance to run ahead
        await asyncio.sleep(0)
    # one chunk in the browser's hands, four queued, one read waiting for room: no more
    assert terminal.reads <= 1 + 4 + 1
    assert bridge._queue.qsize() == 4
    held = bridge._queue.qsize() * CHUNK
    assert held <= 4 * CHUNK
    await browser.inbox.put({"type": "websocket.disconnect", "code": 1001})
    assert await asyncio.wait_for(run, 5) == "closed"
    assert terminal.closed  # the browser went: the shell is closed too
    assert browser.closed is None  # nothing to close on a socket that is gone


class Finite(Flood):
    def __init__(self, chunks: list[bytes]) -> None:
        super().__init__()
        self.chunks = chunks

    async def read(self, n: int) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""

    def exit_status(self) -> int | None:
        return 0


class Browser(StuckBrowser):
    def __init__(self) -> None:
        super().__init__()
        self.got: list[bytes] = []

    async def send_bytes(self, data: bytes) -> None:
        self.got.append(data)


async def test_the_shell_ending_closes_the_socket_after_its_last_output() -> None:
    terminal, browser = Finite([b"a", b"b", b"c"]), Browser()
    await browser.inbox.put({"type": "websocket.receive", "bytes": b"ls\r"})
    await browser.inbox.put(
        {"type": "websocket.receive", "text": '{"type": "resize", "cols": 90, "rows": 20}'}
    )
    bridge = Bridge(browser, terminal, idle_timeout=3600)
    assert await asyncio.wait_for(bridge.run(), 5) == "exit"
    assert browser.got == [b"a", b"b", b"c"]
    assert browser.closed == (1000, "session ended (exit 0)")
    assert bridge.counters.bytes_out == 3


async def test_oversized_frames_close_the_session() -> None:
    terminal, browser = Flood(), Browser()
    await browser.inbox.put({"type": "websocket.receive", "bytes": b"x" * (64 * 1024 + 1)})
    bridge = Bridge(browser, terminal, idle_timeout=3600)
    assert await asyncio.wait_for(bridge.run(), 5) == "too_large"
    assert browser.closed is not None and browser.closed[0] == 1009
    assert terminal.written == []


def test_control_messages() -> None:
    assert parse_control('{"type": "resize", "cols": 80, "rows": 24}') == (80, 24)
    for bad in (
        "not json",
        "[]",
        '{"type": "resize", "cols": 0, "rows": 24}',
        '{"type": "resize", "cols": 80, "rows": 1001}',
        '{"type": "resize", "cols": "80", "rows": 24}',
        '{"type": "resize", "cols": true, "rows": 24}',
        '{"type": "paste"}',
    ):
        assert parse_control(bad) is None, bad
