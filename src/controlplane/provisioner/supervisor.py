"""`serve` runs the workers in a child process it supervises (WORKER_PROCESS=true).

Why a process and not a task: the workers' Proxmox polling, HTTP parsing and step logic
share one event loop with the API otherwise, and a request then waits for them between
each of its awaits (P3 in BENCHMARKS.md: `POST /tenants` p99 while 200 provision). In a
process of their own they run on the other core, and the API's loop only serves requests.

The child is `controlplane worker` with the parent's environment and the database URL the
parent resolved (the embedded server is started once, by the parent). The app's start-up
waits (at most READY_TIMEOUT) for the child to write one byte on a pipe once its services
run, so `serve` answers /healthz with its workers up; a restarted child is not waited for.
It dies with its parent: a SIGKILL of `serve` kills the worker too (PR_SET_PDEATHSIG), as
a kill of the whole service would, so nothing runs on unsupervised; a child that exits on
its own is started again after a backoff. WORKER_PROCESS_NICE lowers its CPU priority (0, none, by
default): at +10 the API answered first on a busy 2-core machine (the child's own start-up
no longer moved /healthz's p99 under the slow-header test), but with the machine at load
10 the workers starved, lost their leases and 200 tenants took 6.6 times the ideal, so
it is the operator's choice where the host has cores to spare. On shutdown the child gets
SIGTERM and its usual grace, then SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

log = logging.getLogger(__name__)

SUPERVISOR_ENV = "CONTROLPLANE_SUPERVISOR_PID"  # set for the child: its parent's pid
READY_FD_ENV = "CONTROLPLANE_READY_FD"  # the pipe the child writes to once it runs
READY_TIMEOUT = 60.0
_PR_SET_PDEATHSIG = 1


def die_with_supervisor(*, nice: int) -> None:
    """In a supervised worker: be killed when the parent dies (exit if it already has), and
    yield the CPU to the API by `nice` (WORKER_PROCESS_NICE)."""
    parent = os.environ.get(SUPERVISOR_ENV)
    if not parent:
        return
    if nice:
        os.nice(nice)
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    # The parent may have died before prctl: then we were re-parented already.
    if os.getppid() != int(parent):
        raise SystemExit(0)


def signal_ready() -> None:
    """In a supervised worker: tell the parent that its services run (once)."""
    fd = os.environ.pop(READY_FD_ENV, None)
    if fd is None:
        return
    with contextlib.suppress(OSError):
        os.write(int(fd), b"1")
        os.close(int(fd))


class WorkerSupervisor:
    """One `controlplane worker` child, restarted when it exits unexpectedly."""

    def __init__(
        self,
        database_url: str,
        *,
        stop_timeout: float,
        command: Sequence[str] | None = None,
        max_backoff: float = 30.0,
    ) -> None:
        self._env = {**os.environ, "DATABASE_URL": database_url, SUPERVISOR_ENV: str(os.getpid())}
        self._command = list(command or (sys.executable, "-m", "controlplane.cli", "worker"))
        self._stop_timeout = stop_timeout
        self._max_backoff = max_backoff
        self._proc: asyncio.subprocess.Process | None = None
        self._watch: asyncio.Task[None] | None = None
        self._stopping = False
        self.starts = 0

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    async def start(self) -> None:
        """Start the child and wait (bounded) until its services run: `serve` is then
        healthy with its workers up, and the child's start-up does not compete with the
        first requests."""
        read_end = await self._spawn()
        # One byte, or EOF (b"") if the child died first (the watcher below restarts it).
        reader = asyncio.ensure_future(asyncio.to_thread(os.read, read_end, 1))
        done, _ = await asyncio.wait({reader}, timeout=READY_TIMEOUT)
        if done:
            os.close(read_end)
        else:
            log.warning("worker process not ready in time; serving without waiting")
            # The thread still reads; close the pipe only once it has returned.
            reader.add_done_callback(lambda _: os.close(read_end))
        self._watch = asyncio.create_task(self._keep_running(), name="worker supervisor")

    async def _spawn(self) -> int:
        """Start the child; return the read end of its readiness pipe."""
        read_end, write_end = os.pipe()
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *self._command,
                env={**self._env, READY_FD_ENV: str(write_end)},
                pass_fds=(write_end,),
            )
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)  # the child holds its own copy
        self.starts += 1
        log.info("worker process started", extra={"pid": self._proc.pid})
        return read_end

    async def _keep_running(self) -> None:
        backoff = 1.0
        while True:
            assert self._proc is not None
            code = await self._proc.wait()
            if self._stopping:
                return
            log.error("worker process exited; restarting", extra={"code": code, "in_s": backoff})
            await asyncio.sleep(backoff)
            if self._stopping:
                return
            backoff = min(backoff * 2, self._max_backoff)
            try:
                os.close(await self._spawn())  # a restart is not waited for
            except OSError:
                log.exception("cannot start the worker process")

    async def stop(self) -> None:
        self._stopping = True
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(self._stop_timeout):
                await proc.wait()
        except TimeoutError:
            log.error("worker process did not stop in time; killing it")
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


Lifespan = Callable[[Any], AbstractAsyncContextManager[Any]]


def with_worker_process(lifespan: Lifespan, supervisor: WorkerSupervisor) -> Lifespan:
    """The app's lifespan, with the worker child started after the app's own start-up and
    stopped before the app's services (the pool, an embedded database) go away."""

    @asynccontextmanager
    async def wrapped(app: Any) -> AsyncIterator[Any]:
        async with lifespan(app) as state:
            await supervisor.start()
            try:
                yield state
            finally:
                await supervisor.stop()

    return wrapped
