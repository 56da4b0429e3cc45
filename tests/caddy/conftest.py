"""A real Caddy (Debian's 2.6) on loopback ports, and small upstream apps standing in for tenants.

Each test gets its own Caddy: admin API and HTTP listener on fresh loopback ports, automatic
HTTPS off, no autosave, XDG folders in the test's tmp dir; it is stopped by PID at the end.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from controlplane.caddy.routes import CaddyRoutes

CADDY = shutil.which("caddy")
SERVER = "edge"
BASE_DOMAIN = "tenants.test"
TENANT_NETWORK = "127.100.0.0/16"


def free_port() -> int:
    """A loopback port nobody holds: a plain bind (no SO_REUSEPORT) fails while Caddy has it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Caddy:
    admin_url: str
    http_addr: str
    pid: int
    log_path: Path

    def boot_config(self) -> dict[str, object]:
        """Only the admin part: what `POST /load` of an "empty" config keeps."""
        host_port = self.admin_url.removeprefix("http://")
        return {"admin": {"listen": host_port, "config": {"persist": False}}}


def _start_caddy(tmp: Path, *, with_server: bool) -> tuple[subprocess.Popen[bytes], Caddy]:
    admin = f"127.0.0.1:{free_port()}"
    http_addr = f"127.0.0.1:{free_port()}"
    config: dict[str, object] = {"admin": {"listen": admin, "config": {"persist": False}}}
    if with_server:
        config["apps"] = {
            "http": {
                "servers": {
                    SERVER: {
                        "listen": [http_addr],
                        "automatic_https": {"disable": True},
                        "routes": [
                            {
                                "@id": "operator-fallback",
                                "handle": [
                                    {
                                        "handler": "static_response",
                                        "status_code": 404,
                                        "body": "unknown host",
                                    }
                                ],
                            }
                        ],
                    }
                }
            }
        }
    (tmp / "boot.json").write_text(json.dumps(config))
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp),
        "XDG_DATA_HOME": str(tmp / "data"),
        "XDG_CONFIG_HOME": str(tmp / "config"),
    }
    log_path = tmp / "caddy.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [CADDY, "run", "--config", str(tmp / "boot.json")],  # type: ignore[list-item]
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp,
        )
    deadline = time.monotonic() + 10
    while True:
        try:
            if (
                httpx.get(f"http://{admin}/config/", timeout=0.5, trust_env=False).status_code
                == 200
            ):
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"caddy did not start: {log_path.read_text()[-2000:]}")
        time.sleep(0.02)
    return proc, Caddy(f"http://{admin}", http_addr, proc.pid, log_path)


@pytest.fixture
def caddy_factory(tmp_path: Path) -> Iterator[Callable[..., Caddy]]:
    if CADDY is None:
        pytest.skip("caddy is not installed (apt-get install -y --no-install-recommends caddy)")
    procs: list[subprocess.Popen[bytes]] = []

    def start(*, with_server: bool = True) -> Caddy:
        folder = tmp_path / f"caddy{len(procs)}"
        folder.mkdir()
        proc, caddy = _start_caddy(folder, with_server=with_server)
        procs.append(proc)
        return caddy

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def caddy(caddy_factory: Callable[..., Caddy]) -> Caddy:
    return caddy_factory()


@pytest.fixture
async def routes(caddy: Caddy) -> AsyncIterator[CaddyRoutes]:
    async with httpx.AsyncClient(timeout=5, trust_env=False) as http:
        yield CaddyRoutes(
            http,
            admin_url=caddy.admin_url,
            server=SERVER,
            base_domain=BASE_DOMAIN,
            listen=[caddy.http_addr],
            automatic_https=False,
        )


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"hello from {self.server.name} path={self.path}".encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[Callable[[str], str]]:
    """Start an HTTP app named `name` on 127.100.0.N:<ephemeral>; returns its `ip:port`.

    127.100.0.0/16 is loopback (Linux answers the whole 127/8) but not the control plane's
    own address, so it can be a tenant network (`TENANT_NETWORK` below), as in the demo.
    """
    servers: list[ThreadingHTTPServer] = []

    def start(name: str) -> str:
        # Each app its own address, as each tenant has its own (two live tenants never share).
        ip = f"127.100.0.{len(servers) + 1}"
        server = ThreadingHTTPServer((ip, 0), _Handler)
        server.name = name  # type: ignore[attr-defined]
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return f"{ip}:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
async def web(caddy: Caddy) -> AsyncIterator[Callable[..., object]]:
    """`await web("acme")` -> the response for acme.<base domain> through Caddy."""
    async with httpx.AsyncClient(timeout=5, trust_env=False) as http:

        async def get(subdomain: str, path: str = "/") -> httpx.Response:
            host = f"{subdomain}.{BASE_DOMAIN}"
            # A fresh connection each time: a kept-alive one stays on the config it started on.
            return await http.get(
                f"http://{caddy.http_addr}{path}", headers={"Host": host, "Connection": "close"}
            )

        yield get


async def our_routes(caddy: Caddy) -> list[dict[str, object]]:
    async with httpx.AsyncClient(timeout=5, trust_env=False) as http:
        r = await http.get(f"{caddy.admin_url}/config/apps/http/servers/{SERVER}/routes")
        r.raise_for_status()
        return r.json() or []


async def load_empty(caddy: Caddy) -> None:
    """Wipe Caddy behind our back: a config with only the admin part (no server, no routes)."""
    async with httpx.AsyncClient(timeout=5, trust_env=False) as http:
        r = await http.post(
            f"{caddy.admin_url}/load",
            json=caddy.boot_config(),
            headers={"Cache-Control": "must-revalidate"},
        )
        r.raise_for_status()
