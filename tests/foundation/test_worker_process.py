"""`serve` runs its workers in a child process it supervises (WORKER_PROCESS, the default)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import httpx
import psutil
import pytest

from tests.conftest import ADMIN_TOKEN, ENCRYPTION_KEY, JWT_SECRET
from tests.foundation.test_process_lifecycle import free_port, wait_until


def _serve(database_url: str, port: int, **extra: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "API_TOKEN": ADMIN_TOKEN,
        "ENCRYPTION_KEY": ENCRYPTION_KEY,
        "JWT_SECRET": JWT_SECRET,
        "NODE_POLL_SECONDS": "3600",
        "TENANT_POLL_SECONDS": "3600",
        "LOG_LEVEL": "WARNING",
        **extra,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "controlplane.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_until(
        lambda: httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200,
        60,
        "serve to be healthy",
    )
    return proc


def _workers_of(proc: subprocess.Popen[bytes]) -> list[psutil.Process]:
    try:
        children = psutil.Process(proc.pid).children()
    except psutil.NoSuchProcess:
        return []
    return [c for c in children if "worker" in c.cmdline()]


@pytest.fixture
def serve(database_url: str) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    proc = _serve(database_url, port, WORKER_PROCESS_NICE="7")
    try:
        yield proc, port
    finally:
        for child in _workers_of(proc):
            child.kill()
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def test_serve_starts_one_worker_child_and_stops_it_on_sigterm(serve) -> None:  # type: ignore[no-untyped-def]
    proc, _ = serve
    # serve answers /healthz only once its child runs (it waits for the child's signal).
    workers = _workers_of(proc)
    assert len(workers) == 1
    # WORKER_PROCESS_NICE lowers the child's priority (and only the child's).
    assert wait_until(
        lambda: workers[0].nice() == psutil.Process(proc.pid).nice() + 7, 30, "the child's nice"
    )
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=40) == 0
    _gone, alive = psutil.wait_procs(workers, timeout=10)
    assert alive == []


def test_a_sigkill_of_serve_takes_the_worker_with_it(serve) -> None:  # type: ignore[no-untyped-def]
    """The pair dies as one service would: no worker runs on unsupervised."""
    proc, _ = serve
    (worker,) = wait_until(lambda: _workers_of(proc), 30, "the worker child")
    proc.kill()
    proc.wait(timeout=10)
    _gone, alive = psutil.wait_procs([worker], timeout=10)
    assert alive == []


def test_a_worker_that_dies_is_started_again(serve) -> None:  # type: ignore[no-untyped-def]
    proc, _ = serve
    (first,) = wait_until(lambda: _workers_of(proc), 30, "the worker child")
    first.kill()
    first.wait(timeout=10)
    (second,) = wait_until(
        lambda: [w for w in _workers_of(proc) if w.pid != first.pid], 30, "a new worker child"
    )
    assert second.is_running()
    assert proc.poll() is None  # serve itself went on answering


def test_worker_process_false_runs_the_workers_inside_serve(database_url: str) -> None:
    port = free_port()
    proc = _serve(database_url, port, WORKER_PROCESS="false")
    try:
        assert _workers_of(proc) == []
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=40) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
