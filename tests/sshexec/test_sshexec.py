"""pct exec over SSH against the simulator's SSH server: pinning, quoting, pct's errors."""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from controlplane.pvesim import Simulator
from controlplane.pvesim.ssh import SimSshServer, start_ssh_server
from controlplane.sshexec import (
    HostKeyMismatch,
    KeyPair,
    SshAuthError,
    SshConnectError,
    SshTimeout,
    fingerprint,
    generate_keypair,
    pct_exec_command,
    run_in_container,
)


@dataclass
class Node:
    sim: Simulator
    server: SimSshServer
    keys: KeyPair

    async def run(self, vmid: int, command: str, **overrides: Any) -> Any:
        options: dict[str, Any] = {
            "host": self.server.host,
            "port": self.server.port,
            "username": "root",
            "private_key_pem": self.keys.private_pem,
            "known_host_key": self.server.host_public_key,
            "vmid": vmid,
            "command": command,
            "timeout": 5.0,
            **overrides,
        }
        return await run_in_container(**options)


@pytest.fixture(scope="module")
def keys() -> KeyPair:
    return generate_keypair()


@pytest.fixture
async def node(keys: KeyPair) -> AsyncIterator[Node]:
    sim = Simulator(["pve1", "pve2"], task_durations={"vzstart": 0.01})
    server = await start_ssh_server(sim, authorized_key=keys.public_openssh, node="pve1")
    await sim.container_started(sim.containers[9000])
    await sim.container_started(sim.containers[9001])
    yield Node(sim, server, keys)
    await server.close()
    await sim.close()


def test_command_is_one_quoted_argument() -> None:
    nasty = "echo 'a b' \"$HOME\" && rm -rf /tmp/x; exit 3 # `id`"
    line = pct_exec_command(101, nasty)
    assert shlex.split(line) == ["pct", "exec", "101", "--", "sh", "-c", nasty]
    with pytest.raises(ValueError):
        pct_exec_command("101; reboot", "true")  # type: ignore[arg-type]


async def test_runs_and_records(node: Node) -> None:
    result = await node.run(9000, "echo hello world && hostname")
    assert (result.exit_status, result.stdout, result.stderr) == (
        0,
        "hello world\ndebian-12-tpl-pve1\n",
        "",
    )
    assert result.ok
    state = node.sim.state()
    commands = next(c for c in state["containers"] if c["vmid"] == 9000)["commands"]
    assert [c["command"] for c in commands] == ["echo hello world && hostname"]


async def test_exit_marker_and_injected_failures(node: Node) -> None:
    result = await node.run(9000, "apt-get install -y nginx || exit 42")
    assert result.exit_status == 42 and not result.ok
    node.sim.faults.update({"ssh_failure_rate": 1.0})
    assert (await node.run(9000, "true")).exit_status == 1


async def test_pct_errors(node: Node) -> None:
    await node.sim.container_stopped(node.sim.containers[9000])
    stopped = await node.run(9000, "true")
    assert (stopped.exit_status, stopped.stderr) == (255, "container '9000' not running!\n")
    missing = await node.run(4242, "true")
    assert (missing.exit_status, missing.stderr) == (
        255,
        "Configuration file 'nodes/pve1/lxc/4242.conf' does not exist\n",
    )
    elsewhere = await node.run(9001, "true")  # lives on pve2; this is pve1's sshd
    assert elsewhere.stderr == "Configuration file 'nodes/pve1/lxc/9001.conf' does not exist\n"
    assert all(not c.commands for c in node.sim.containers.values())


async def test_host_key_is_pinned(node: Node) -> None:
    impostor = generate_keypair().public_openssh
    with pytest.raises(HostKeyMismatch) as err:
        await node.run(9000, "touch /tmp/pwned", known_host_key=impostor)
    message = str(err.value)
    assert fingerprint(impostor) in message
    assert fingerprint(node.server.host_public_key) in message
    assert node.sim.containers[9000].commands == []  # nothing ran


async def test_wrong_client_key(node: Node) -> None:
    with pytest.raises(SshAuthError):
        await node.run(9000, "true", private_key_pem=generate_keypair().private_pem)
    with pytest.raises(SshAuthError):
        await node.run(9000, "true", username="admin")


async def test_unreachable_and_silent_servers(node: Node) -> None:
    silent = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    with pytest.raises(SshTimeout):
        await node.run(9000, "true", port=port, timeout=0.2)
    silent.close()
    await silent.wait_closed()
    with pytest.raises(SshConnectError):
        await node.run(9000, "true", port=port)


async def test_keypair() -> None:
    pair = generate_keypair("tenant-x")
    assert pair.private_pem.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert pair.public_openssh.startswith("ssh-ed25519 ") and pair.public_openssh.endswith(
        " tenant-x"
    )
    assert fingerprint(pair.public_openssh).startswith("SHA256:")
    with pytest.raises(ValueError, match="bad SSH key"):
        await run_in_container(
            host="127.0.0.1", port=1, username="root", private_key_pem="junk",
            known_host_key=pair.public_openssh, vmid=100, command="true", timeout=1,
        )  # fmt: skip
