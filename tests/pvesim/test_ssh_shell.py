"""The simulator's SSH endpoint: ``pct enter`` / ``lxc-attach`` shells with a PTY, and the
container commands that ``pct exec`` and the shell both answer (reference section 19)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncssh
import pytest

from controlplane.pvesim import Simulator
from controlplane.pvesim.ssh import SimSshServer, start_ssh_server
from controlplane.sshexec import KeyPair, generate_keypair

from .conftest import new_sim


@dataclass
class Endpoint:
    sim: Simulator
    server: SimSshServer
    conn: asyncssh.SSHClientConnection


@pytest.fixture(scope="module")
def keys() -> KeyPair:
    return generate_keypair()


@pytest.fixture
async def ssh(keys: KeyPair) -> AsyncIterator[Endpoint]:
    sim = new_sim(guest_units=("app.service", "nginx.service"))
    server = await start_ssh_server(sim, authorized_key=keys.public_openssh, node="pve1")
    await sim.container_started(sim.containers[9000])
    conn = await asyncssh.connect(
        server.host,
        server.port,
        username="root",
        client_keys=[asyncssh.import_private_key(keys.private_pem)],
        known_hosts=None,
    )
    yield Endpoint(sim, server, conn)
    conn.close()
    await server.close()
    await sim.close()


async def read_until(process: asyncssh.SSHClientProcess[str], marker: str) -> str:
    """Everything the session printed up to and including ``marker``."""
    seen = ""
    async with asyncio.timeout(5):
        while marker not in seen:
            chunk = await process.stdout.read(4096)
            if not chunk:
                break
            seen += chunk
    assert marker in seen, seen
    return seen


PROMPT = "root@debian-12-tpl-pve1:~# "


async def test_pct_enter_with_a_pty(ssh: Endpoint) -> None:
    process = await ssh.conn.create_process(
        "pct enter 9000", term_type="xterm-256color", term_size=(100, 30)
    )
    await read_until(process, PROMPT)
    process.stdin.write("echo hello\n")
    out = await read_until(process, PROMPT)
    assert "hello\r\n" in out  # the line is echoed, then answered, on a terminal (CR LF)
    process.stdin.write("stty size\n")
    assert "30 100" in await read_until(process, PROMPT)
    process.change_terminal_size(132, 43)
    await asyncio.sleep(0.05)
    process.stdin.write("stty size; tput cols\n")
    out = await read_until(process, PROMPT)
    assert "43 132" in out and "132\r\n" in out
    process.stdin.write("hostname; cat /etc/os-release\n")
    out = await read_until(process, PROMPT)
    assert "debian-12-tpl-pve1" in out and 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"' in out
    process.stdin.write("exit\n")
    await process.wait_closed()
    assert process.exit_status == 0
    assert ssh.sim.containers[9000].commands == []  # a console's content is not recorded


async def test_lxc_attach_without_a_pty_and_exit_status(ssh: Endpoint) -> None:
    process = await ssh.conn.create_process("lxc-attach -n 9000")
    process.stdin.write("echo one\nfalse\nexit 7\n")
    await process.wait_closed()
    assert process.exit_status == 7
    assert await process.stdout.read() == "one\n"  # no prompt, no echo, no CR without a PTY


async def test_shell_refusals(ssh: Endpoint) -> None:
    await ssh.sim.container_stopped(ssh.sim.containers[9000])
    stopped = await ssh.conn.run("pct enter 9000", term_type="xterm")
    assert stopped.exit_status == 255 and "container '9000' not running!" in str(stopped.stdout)
    missing = await ssh.conn.run("pct enter 4242")
    assert missing.stderr == "Configuration file 'nodes/pve1/lxc/4242.conf' does not exist\n"
    host = await ssh.conn.run("bash")
    assert host.exit_status == 127


async def test_app_management_over_pct_exec(ssh: Endpoint) -> None:
    async def pct(script: str) -> asyncssh.SSHCompletedProcess:
        return await ssh.conn.run(f"pct exec 9000 -- sh -c '{script}'")

    show = await pct("systemctl show app.service --property=ActiveState,SubState,MainPID")
    lines = dict(line.split("=", 1) for line in str(show.stdout).splitlines())
    assert lines["ActiveState"] == "active" and lines["SubState"] == "running"
    pid = int(lines["MainPID"])
    assert (await pct("systemctl restart app.service")).exit_status == 0
    value = await pct("systemctl show app.service -p MainPID --value")
    assert int(str(value.stdout).strip()) != pid
    log = await pct("journalctl -u app.service -n 4 --no-pager")
    entries = str(log.stdout).splitlines()
    assert len(entries) == 4
    assert "systemd[1]: Started app.service - app." in entries[-2]
    assert entries[-1].endswith(f"app started, pid {int(str(value.stdout).strip())}")
    assert all(" debian-12-tpl-pve1 " in e for e in entries)
    nginx = await pct("journalctl -u nginx.service --no-pager")
    assert all("app" not in e.split(": ", 1)[0] for e in str(nginx.stdout).splitlines())
    unknown = await pct("systemctl restart ghost.service")
    assert (unknown.exit_status, unknown.stderr) == (
        5,
        "Failed to restart ghost.service: Unit ghost.service not found.\n",
    )
    absent = await pct("systemctl show ghost --property=LoadState,ActiveState")
    assert absent.stdout == "LoadState=not-found\nActiveState=inactive\n"
    stopped = await pct("systemctl stop nginx; systemctl is-active nginx.service")
    assert (stopped.exit_status, stopped.stdout) == (3, "inactive\n")
    none = await pct("journalctl -u ghost.service --no-pager")
    assert none.stdout == "-- No entries --\n"
    ssh.sim.add_unit(9000, "myapp.service", "My App")
    mine = await pct("systemctl show myapp.service -p ActiveState -p Description")
    assert mine.stdout == "ActiveState=active\nDescription=My App\n"
    recorded = [c["command"] for c in ssh.sim.containers[9000].commands]
    assert recorded[0] == "systemctl show app.service --property=ActiveState,SubState,MainPID"
