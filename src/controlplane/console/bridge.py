"""The bridge between a browser's WebSocket and a PTY process over SSH.

Frames: binary frames from the browser are keystrokes, written to the PTY as they are;
text frames are JSON control messages (`{"type": "resize", "cols": 120, "rows": 40}`);
binary frames to the browser are the terminal's output. The session ends when either
side closes (the other is closed then), after `idle_timeout` seconds without a byte
either way, when the session is no longer allowed (checked at each renewal: the tenant
suspended, the user disabled), or when the control plane stops.

Backpressure: output goes through a queue of at most `queue_chunks` chunks of at most
`CHUNK` bytes. When the browser reads slowly the queue fills, the bridge stops reading
the SSH channel, the channel's receive window (`sshexec.pool.PTY_WINDOW`) fills, and the
node stops sending: memory per console stays below queue + window whatever the output.
Input is bounded by the WebSocket message size (`MAX_MESSAGE`) and awaits the channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)

CHUNK = 16 * 1024
QUEUE_CHUNKS = 8
MAX_MESSAGE = 64 * 1024  # a larger frame from the browser closes the session (1009)
MAX_COLS = MAX_ROWS = 1000


class Terminal(Protocol):
    """The PTY side (an asyncssh process in bytes mode, or a stand-in in tests)."""

    async def read(self, n: int) -> bytes: ...
    async def write(self, data: bytes) -> None: ...
    def resize(self, cols: int, rows: int) -> None: ...
    def close(self) -> None: ...
    def exit_status(self) -> int | None: ...


class Browser(Protocol):
    """The WebSocket side: ASGI-style messages in, bytes out."""

    async def receive(self) -> dict[str, Any]: ...
    async def send_bytes(self, data: bytes) -> None: ...
    async def close(self, code: int, reason: str) -> None: ...


@dataclass
class Counters:
    bytes_in: int = 0  # browser -> container
    bytes_out: int = 0  # container -> browser
    last_activity: float = field(default_factory=time.monotonic)

    def touch(self) -> None:
        self.last_activity = time.monotonic()


class SshTerminal:
    """`Terminal` over an `asyncssh.SSHClientProcess[bytes]` opened with a PTY."""

    def __init__(self, process: Any) -> None:
        self._process = process

    async def read(self, n: int) -> bytes:
        data: bytes = await self._process.stdout.read(n)
        return data

    async def write(self, data: bytes) -> None:
        self._process.stdin.write(data)
        await self._process.stdin.drain()

    def resize(self, cols: int, rows: int) -> None:
        self._process.change_terminal_size(cols, rows)

    def close(self) -> None:
        self._process.close()

    def exit_status(self) -> int | None:
        status: int | None = self._process.exit_status
        return status


def parse_control(text: str) -> tuple[int, int] | None:
    """(cols, rows) of a valid resize message; None for anything else (ignored)."""
    try:
        message = json.loads(text)
    except ValueError:
        return None
    if not isinstance(message, dict) or message.get("type") != "resize":
        return None
    cols, rows = message.get("cols"), message.get("rows")
    if type(cols) is not int or type(rows) is not int:
        return None
    if not (1 <= cols <= MAX_COLS and 1 <= rows <= MAX_ROWS):
        return None
    return cols, rows


class Bridge:
    def __init__(
        self,
        browser: Browser,
        terminal: Terminal,
        *,
        idle_timeout: float,
        queue_chunks: int = QUEUE_CHUNKS,
        on_tick: Callable[[Counters], Awaitable[bool]] | None = None,
        tick_every: float = 20.0,
    ) -> None:
        self.browser = browser
        self.terminal = terminal
        self.idle_timeout = idle_timeout
        self.counters = Counters()
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=queue_chunks)
        self._on_tick = on_tick
        self._tick_every = tick_every

    async def run(self, stop: asyncio.Event | None = None) -> str:
        """Pump both ways until one side ends; returns why (`exit`, `closed`, `idle` ...)."""
        tasks: dict[asyncio.Task[Any], str] = {
            asyncio.create_task(self._pump_out(), name="console-ssh-read"): "",
            asyncio.create_task(self._send_out(), name="console-ws-send"): "exit",
            asyncio.create_task(self._pump_in(), name="console-ws-read"): "closed",
            asyncio.create_task(self._watch_idle(), name="console-idle"): "idle",
        }
        if self._on_tick is not None:
            tasks[asyncio.create_task(self._ticks(), name="console-tick")] = "revoked"
        if stop is not None:
            tasks[asyncio.create_task(stop.wait(), name="console-stop")] = "shutdown"
        waiting = {t for t, reason in tasks.items() if reason}
        reason = "error"
        try:
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            first = done.pop()
            reason = tasks[first]
            if not first.cancelled() and first.exception() is not None:
                exc = first.exception()
                if isinstance(exc, _TooLarge):
                    reason = "too_large"
                else:
                    log.warning("console bridge failed: %r", exc)
                    reason = "error"
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self.terminal.close()
        await self._close_browser(reason)
        return reason

    async def _close_browser(self, reason: str) -> None:
        if reason == "closed":
            return  # the browser went first
        code = {
            "exit": 1000,
            "idle": 1000,
            "revoked": 1008,
            "shutdown": 1001,
            "too_large": 1009,
        }.get(reason, 1011)
        text = reason
        if reason == "exit":
            status = self.terminal.exit_status()
            text = f"session ended (exit {status})" if status is not None else "session ended"
        elif reason == "idle":
            text = f"idle for {self.idle_timeout:g} s"
        elif reason == "revoked":
            text = "the tenant is no longer active, or no longer yours"
        with contextlib.suppress(Exception):
            await self.browser.close(code, text[:120])

    async def _pump_out(self) -> None:
        # Reads the PTY only while the queue has room: a slow browser stops this read,
        # and with it the SSH channel's window (see the module's docstring).
        while True:
            try:
                data = await self.terminal.read(CHUNK)
            except Exception as exc:  # the channel or the connection broke: end of output
                log.info("console output ended: %r", exc)
                data = b""
            if not data:
                break
            await self._queue.put(data)
        await self._queue.put(None)  # the end, after what is queued

    async def _send_out(self) -> None:
        while True:
            data = await self._queue.get()
            if data is None:
                return
            await self.browser.send_bytes(data)
            self.counters.bytes_out += len(data)
            self.counters.touch()

    async def _pump_in(self) -> None:
        while True:
            message = await self.browser.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes")
            text = message.get("text")
            size = len(data) if data is not None else len(text or "")
            if size > MAX_MESSAGE:
                raise _TooLarge()
            self.counters.touch()
            if data is not None:
                self.counters.bytes_in += len(data)
                await self.terminal.write(data)
            elif text is not None:
                size_change = parse_control(text)
                if size_change is not None:
                    self.terminal.resize(*size_change)

    async def _watch_idle(self) -> None:
        while True:
            left = self.counters.last_activity + self.idle_timeout - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(left)

    async def _ticks(self) -> None:
        """Until `on_tick` says the session may not go on (it returns False)."""
        assert self._on_tick is not None
        while True:
            await asyncio.sleep(self._tick_every)
            try:
                if not await self._on_tick(self.counters):
                    return
            except Exception as exc:  # a missed renewal is retried at the next tick
                log.warning("console session renewal failed: %s", exc)


class _TooLarge(Exception):
    pass
