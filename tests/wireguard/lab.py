"""Network namespaces with wireguard-go for the WireGuard tests (root, Debian packages).

A `Lab` builds a hub namespace and a client namespace joined by a veth (192.0.2.1 and
192.0.2.2, TEST-NET-1, only inside these namespaces), starts `wireguard-go -f` in each with
names unique machine-wide (the UAPI folder is shared by all namespaces), and tears it all
down by PID and by namespace name.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

UAPI_DIR = Path("/var/run/wireguard")
HUB_VETH_IP = "192.0.2.1"
CLIENT_VETH_IP = "192.0.2.2"
LISTEN_PORT = 51820
_ids = itertools.count()


def skip_unless_possible() -> None:
    missing = [
        tool for tool in ("wireguard-go", "wg", "wg-quick", "ip") if shutil.which(tool) is None
    ]
    if missing:
        pytest.skip(
            f"{', '.join(missing)} missing: apt-get install -y --no-install-recommends "
            "wireguard-go wireguard-tools iproute2"
        )
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (or CAP_NET_ADMIN)")


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, capture_output=True, text=True, timeout=20)
    if check and result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}"
        )
    return result


class Lab:
    def __init__(self) -> None:
        n = next(_ids)
        tag = f"{os.getpid() % 100000}x{n}"
        self.hub_ns, self.client_ns = f"cpwg-{tag}-h", f"cpwg-{tag}-c"
        self.hub_if, self.client_if = f"wgh{tag}", f"wgc{tag}"  # at most 15 characters
        self._namespaces: list[str] = []
        self._procs: list[subprocess.Popen[bytes]] = []

    # --- set-up ---------------------------------------------------------------------

    def start(self) -> Lab:
        for ns in (self.hub_ns, self.client_ns):
            result = run("ip", "netns", "add", ns, check=False)
            if result.returncode != 0:
                self.stop()
                pytest.skip(f"cannot create a network namespace: {result.stderr.strip()}")
            self._namespaces.append(ns)
            run("ip", "-n", ns, "link", "set", "lo", "up")
        veth_h, veth_c = f"vh{self.hub_if[3:]}", f"vc{self.hub_if[3:]}"
        run(
            "ip",
            "link",
            "add",
            veth_h,
            "netns",
            self.hub_ns,
            "type",
            "veth",
            "peer",
            "name",
            veth_c,
            "netns",
            self.client_ns,
        )
        run("ip", "-n", self.hub_ns, "addr", "add", f"{HUB_VETH_IP}/24", "dev", veth_h)
        run("ip", "-n", self.hub_ns, "link", "set", veth_h, "up")
        run("ip", "-n", self.client_ns, "addr", "add", f"{CLIENT_VETH_IP}/24", "dev", veth_c)
        run("ip", "-n", self.client_ns, "link", "set", veth_c, "up")
        self.wireguard_go(self.hub_ns, self.hub_if)
        self.wireguard_go(self.client_ns, self.client_if)
        return self

    def wireguard_go(self, ns: str, interface: str) -> None:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, "wireguard-go", "-f", interface],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LOG_LEVEL": "error"},
        )
        self._procs.append(proc)
        socket_path = UAPI_DIR / f"{interface}.sock"
        deadline = time.monotonic() + 10
        while not socket_path.is_socket():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"wireguard-go {interface} did not start (rc={proc.poll()})")
            time.sleep(0.02)

    def setup_hub(self, private_key: str, address: str) -> None:
        """The hub's own key, port and tunnel address (what the operator does once)."""
        key_file = Path(f"/tmp/{self.hub_if}.key")
        key_file.write_text(private_key + "\n")
        key_file.chmod(0o600)
        try:
            run(
                "wg",
                "set",
                self.hub_if,
                "private-key",
                str(key_file),
                "listen-port",
                str(LISTEN_PORT),
            )
        finally:
            key_file.unlink()
        run("ip", "-n", self.hub_ns, "addr", "add", address, "dev", self.hub_if)
        run("ip", "-n", self.hub_ns, "link", "set", self.hub_if, "up")

    # --- tear-down ------------------------------------------------------------------

    def stop(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self._procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._procs.clear()
        for ns in self._namespaces:
            run("ip", "netns", "del", ns, check=False)
        self._namespaces.clear()
