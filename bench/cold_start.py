"""P4: cold start to healthy with embedded PostgreSQL, and idle memory.

Cold: a fresh data folder (initdb + start + migrations) until `GET /healthz` answers 200.
Warm: the same folder again. Idle memory: resident memory of the control plane process, of
its worker child (WORKER_PROCESS) and of the embedded PostgreSQL processes, 5 s after
start-up with nothing to do.

    .venv/bin/python bench/cold_start.py
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil


def wait_healthy(port: int, timeout: float = 60.0) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return time.perf_counter() - started
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.02)
    raise TimeoutError("not healthy")


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += psutil.Process(pid).memory_info().rss
    return total / 2**20


def run(pgdir: Path, port: int) -> tuple[float, float, float, float]:
    env = {
        **os.environ,
        "API_TOKEN": secrets.token_urlsafe(32),
        "ENCRYPTION_KEY": secrets.token_hex(32),
        "JWT_SECRET": secrets.token_hex(32),
        "EMBEDDED_PG_DIR": str(pgdir),
        "DATABASE_URL": "",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("DATABASE_URL")
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "controlplane.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_healthy(port)
        ready = time.perf_counter() - t0
        time.sleep(5)
        cp = rss_mb([proc.pid])
        # WORKER_PROCESS (the default): the workers run in a child of `serve`.
        workers = rss_mb(
            [c.pid for c in psutil.Process(proc.pid).children() if "worker" in c.cmdline()]
        )
        pg = rss_mb(
            [
                p.pid
                for p in psutil.process_iter(["cmdline"])
                if p.info["cmdline"] and any(str(pgdir) in a for a in p.info["cmdline"])
            ]
        )
        pg += rss_mb(
            [
                c.pid
                for p in psutil.process_iter(["cmdline"])
                if p.info["cmdline"] and any(str(pgdir) in a for a in p.info["cmdline"])
                for c in p.children(recursive=True)
            ]
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    return ready, cp, workers, pg


def main() -> None:
    base = Path(tempfile.mkdtemp(prefix="cp-cold-"))
    pgdir = base / "pg"
    try:
        # The embedded server stops when `serve` exits cleanly (SIGTERM), so the second
        # run starts it again on the existing data folder.
        cold, _, _, _ = run(pgdir, 18201)
        warm, cp_warm, workers_warm, pg_warm = run(pgdir, 18202)
    finally:
        for p in psutil.process_iter(["cmdline"]):  # never leave a server behind
            if p.info["cmdline"] and any(str(base) in a for a in p.info["cmdline"]):
                with contextlib.suppress(psutil.Error):
                    p.terminate()
        shutil.rmtree(base, ignore_errors=True)
    print("P4 start-up with embedded PostgreSQL")
    print(f"  cold start to healthy   {cold:6.2f} s   (initdb + start + migrations + app)")
    print(f"  warm start to healthy   {warm:6.2f} s")
    print(f"  idle memory, control plane process   {cp_warm:6.1f} MB RSS")
    print(f"  idle memory, its worker child        {workers_warm:6.1f} MB RSS")
    print(f"  idle memory, embedded PostgreSQL     {pg_warm:6.1f} MB RSS (all its processes)")


if __name__ == "__main__":
    main()
