"""End to end: peers made through the API reach the hub interface, and a client namespace
using the exported config file completes a real handshake and talks TCP through the tunnel."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from controlplane.wireguard.device import UapiDevice
from controlplane.wireguard.keys import from_hex, to_hex
from tests.caddy.helpers import eventually
from tests.conftest import ADMIN_TOKEN
from tests.wireguard.conftest import HUB_PRIVATE, wg_settings
from tests.wireguard.lab import HUB_VETH_IP, LISTEN_PORT, UAPI_DIR, Lab, run

PEERS = "/api/v1/wireguard/peers"
ECHO_PORT = 9000  # inside the hub namespace only: nothing else listens there

ECHO = """
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.66.0.1", %d)); s.listen(); print("ready", flush=True)
while True:
    c, _ = s.accept(); c.sendall(b"pong " + c.recv(100)); c.close()
"""
CLIENT = """
import socket, sys
try:
    s = socket.create_connection(("10.66.0.1", %d), timeout=%s); s.sendall(b"ping")
    print(s.recv(100).decode())
except OSError as exc:
    print("error", exc); sys.exit(1)
"""


@pytest.fixture
async def hub_app(lab: Lab, database_url: str, tmp_path: Path) -> AsyncIterator[object]:
    from controlplane.app import create_app

    lab.setup_hub(HUB_PRIVATE, "10.66.0.1/24")
    settings = wg_settings(
        database_url,
        tmp_path,
        wg_interface=lab.hub_if,
        wg_uapi_dir=str(UAPI_DIR),
        wg_endpoint=f"{HUB_VETH_IP}:{LISTEN_PORT}",
        wg_sync_seconds=0.5,
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def echo_server(lab: Lab) -> object:
    proc = subprocess.Popen(
        ["ip", "netns", "exec", lab.hub_ns, sys.executable, "-c", ECHO % ECHO_PORT],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
    yield proc
    proc.kill()
    proc.wait()


async def talk(lab: Lab, timeout: float = 3) -> str:
    proc = await asyncio.create_subprocess_exec(
        "ip",
        "netns",
        "exec",
        lab.client_ns,
        sys.executable,
        "-c",
        CLIENT % (ECHO_PORT, timeout),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    return out.decode().strip()


async def hub_peers(lab: Lab) -> dict[str, dict[str, str]]:
    """Raw UAPI view of the hub: public key -> its fields (handshake time, bytes...)."""
    device = UapiDevice(lab.hub_if, UAPI_DIR / f"{lab.hub_if}.sock")
    peers: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in await device._xfer("get=1\n\n"):
        key, _, value = line.partition("=")
        if key == "public_key":
            current = peers.setdefault(from_hex(value), {})
        elif current is not None:
            current[key] = current[key] + "," + value if key in current else value
    return peers


def use_config(lab: Lab, config: str, tmp_path: Path) -> None:
    """Bring the client interface up from the exported wg-quick file, as wg-quick would."""
    conf = tmp_path / f"{lab.client_if}.conf"
    conf.write_text(config)
    conf.chmod(0o600)
    stripped = tmp_path / "stripped.conf"
    stripped.write_text(run("wg-quick", "strip", str(conf)).stdout)
    run("wg", "setconf", lab.client_if, str(stripped))
    fields = dict(line.split(" = ", 1) for line in config.splitlines() if " = " in line)
    run("ip", "-n", lab.client_ns, "addr", "add", fields["Address"], "dev", lab.client_if)
    run("ip", "-n", lab.client_ns, "link", "set", lab.client_if, "up")
    for network in fields["AllowedIPs"].split(", "):
        run("ip", "-n", lab.client_ns, "route", "add", network, "dev", lab.client_if)


async def test_handshake_through_the_hub_with_the_exported_config(
    lab: Lab, hub_app: object, echo_server: object, tmp_path: Path
) -> None:
    transport = httpx.ASGITransport(app=hub_app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(
        transport=transport, base_url="http://t", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    ) as admin:
        peer = (await admin.post(PEERS, json={"name": "laptop"})).json()
        key = peer["public_key"]
        present = await eventually(lambda: _has(lab, key))
        assert present["allowed_ip"] == "10.66.0.2/32"

        use_config(lab, (await admin.get(f"{PEERS}/{peer['id']}/config")).text, tmp_path)
        assert await talk(lab) == "pong ping"
        state = (await hub_peers(lab))[key]
        assert int(state["last_handshake_time_sec"]) > 0
        assert int(state["rx_bytes"]) > 0 and int(state["tx_bytes"]) > 0

        # Disabled: gone from the hub, and the tunnel no longer carries anything.
        assert (await admin.post(f"{PEERS}/{peer['id']}/disable")).status_code == 200
        await eventually(lambda: _gone(lab, key))
        assert (await talk(lab, timeout=1)).startswith("error")

        assert (await admin.post(f"{PEERS}/{peer['id']}/enable")).status_code == 200
        await eventually(lambda: _has(lab, key))
        # The hub forgot the client's session and endpoint with the peer; a client re-handshakes
        # on its own after ~15 s of silence, or at once when its tunnel is switched on again.
        run("wg", "setconf", lab.client_if, str(tmp_path / "stripped.conf"))
        assert await talk(lab) == "pong ping"

        assert (await admin.delete(f"{PEERS}/{peer['id']}")).status_code == 204
        await eventually(lambda: _gone(lab, key))


async def test_hub_drift_is_repaired(lab: Lab, hub_app: object) -> None:
    transport = httpx.ASGITransport(app=hub_app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(
        transport=transport, base_url="http://t", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    ) as admin:
        peer = (
            await admin.post(PEERS, json={"name": "site", "allowed_ips": ["192.168.40.0/24"]})
        ).json()
        key = peer["public_key"]
        await eventually(lambda: _has(lab, key))
        run("wg", "set", lab.hub_if, "peer", key, "remove")  # behind our back
        stranger = from_hex(to_hex(key)[::-1])  # some other valid-looking key
        run("wg", "set", lab.hub_if, "peer", stranger, "allowed-ips", "10.66.0.200/32")
        await eventually(lambda: _has(lab, key), timeout=5)  # periodic sync: 0.5 s
        await eventually(lambda: _gone(lab, stranger), timeout=5)
        assert (await hub_peers(lab))[key]["allowed_ip"] == "10.66.0.2/32,192.168.40.0/24"

        # A change made straight in SQL reaches the hub too (trigger + LISTEN).
        db = hub_app.state.cp.db  # type: ignore[attr-defined]
        await db.execute("UPDATE wireguard_peers SET enabled = false")
        await eventually(lambda: _gone(lab, key), timeout=5)
    syncer = hub_app.state.cp.wireguard_sync  # type: ignore[attr-defined]
    assert syncer.last_error is None


async def _has(lab: Lab, key: str) -> dict[str, str] | None:
    return (await hub_peers(lab)).get(key)


async def _gone(lab: Lab, key: str) -> bool:
    return key not in await hub_peers(lab)
