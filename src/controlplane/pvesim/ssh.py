"""An SSH server for the simulated cluster that understands ``pct exec`` and ``pct enter``.

It authenticates one configured public key for one user, and runs
``pct exec <vmid> -- <command...>`` against the ``Simulator``: like pve-container's ``pct``,
a CT whose config is not on the node, or that is not running, gets a message on stderr and
exit status 255. Commands are not executed: they are recorded per container (visible in
``/_sim/state``) and answered by the small interpreter of ``guestshell`` (``echo``,
``hostname``, ``cat /etc/os-release``, ``systemctl``, ``journalctl``, ``true``, ``false``,
``exit N``). ``pct enter <vmid>`` and ``lxc-attach -n <vmid>`` open an interactive shell in
the container (a prompt and line editing when a PTY is requested, window-size changes
honoured). Failure injection: a command containing ``exit N`` exits N, and the
``ssh_failure_rate`` fault makes a share of ``pct exec`` commands exit 1.
"""

from __future__ import annotations

import shlex
import time

import asyncssh

from .guestshell import Outcome, run_script
from .models import Container
from .simulator import Simulator

__all__ = ["NOT_SIMULATED", "Outcome", "SimSshServer", "pct_exec", "start_ssh_server"]

NOT_SIMULATED = 127


def _container(
    sim: Simulator, vmid_word: str, node: str | None
) -> tuple[Container | None, Outcome]:
    """pct's checks: a vmid, a config on this node, a running container."""
    try:
        vmid = int(vmid_word)
    except ValueError:
        return None, Outcome(
            255,
            stderr="400 Parameter verification failed.\n"
            f"vmid: type check ('integer') failed - got '{vmid_word}'\n",
        )
    ct = sim.containers.get(vmid)
    here = node or (ct.node if ct else next(iter(sim.nodes)))
    if ct is None or ct.node != here:
        return None, Outcome(
            255, stderr=f"Configuration file 'nodes/{here}/lxc/{vmid}.conf' does not exist\n"
        )
    if not ct.running:
        return None, Outcome(255, stderr=f"container '{vmid}' not running!\n")
    return ct, Outcome(0)


def shell_target(argv: list[str]) -> str | None:
    """The vmid of ``pct enter <vmid>`` or ``lxc-attach -n <vmid>`` (None: neither)."""
    if argv[:2] == ["pct", "enter"] and len(argv) >= 3:
        return argv[2]
    if argv[:1] == ["lxc-attach"]:
        for flag in ("-n", "--name"):
            if flag in argv[:-1]:
                return argv[argv.index(flag) + 1]
        for arg in argv[1:]:
            if arg.startswith("--name="):
                return arg.split("=", 1)[1]
    return None


def pct_exec(sim: Simulator, command: str, node: str | None = None) -> Outcome:
    """What ``pct exec`` on ``node`` (any node when None) does with ``command``."""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        return Outcome(2, stderr=f"sh: 1: Syntax error: {exc}\n")
    if argv[:2] != ["pct", "exec"] or len(argv) < 3:
        name = argv[0] if argv else ""
        return Outcome(
            NOT_SIMULATED,
            stderr=f"pvesim: only 'pct exec', 'pct enter' and 'lxc-attach' are simulated, "
            f"not {name!r}\n",
        )
    rest = argv[3:]
    if rest[:1] == ["--"]:
        rest = rest[1:]
    ct, refusal = _container(sim, argv[2], node)
    if ct is None:
        return refusal
    if not rest:
        return Outcome(255, stderr="missing command at /usr/share/perl5/PVE/CLI/pct.pm\n")
    script = rest[2] if rest[:2] == ["sh", "-c"] and len(rest) > 2 else shlex.join(rest)
    if sim.draw(sim.faults.ssh_failure_rate):
        outcome = Outcome(1, stderr="pvesim: injected failure\n")
    else:
        outcome = run_script(ct, script, sim.rng)
        outcome = Outcome(outcome.exit_status, outcome.stdout, outcome.stderr)
    ct.commands.append({"command": script, "exit_status": outcome.exit_status, "at": time.time()})
    return outcome


def _prompt(ct: Container) -> str:
    return f"root@{ct.hostname}:~# "


def _size(process: asyncssh.SSHServerProcess[str]) -> tuple[int, int] | None:
    if process.get_terminal_type() is None:
        return None
    width, height, _pw, _ph = process.get_terminal_size()
    return (width or 80, height or 24)


async def interactive_shell(
    sim: Simulator, process: asyncssh.SSHServerProcess[str], vmid_word: str, node: str | None
) -> None:
    """``pct enter``: a shell in the container, with a prompt when a PTY was requested.

    Lines are answered by the same interpreter as ``pct exec`` (their content is not
    recorded). A window-size change reaches ``stty size``; ``exit`` or end of input ends
    the session with the last status.
    """
    tty = process.get_terminal_type() is not None
    errors = process.stdout if tty else process.stderr  # a terminal shows both on one stream
    ct, refusal = _container(sim, vmid_word, node)
    if ct is None:
        errors.write(refusal.stderr)
        process.exit(refusal.exit_status)
        return
    size = _size(process)
    status = 0
    prompt = True
    while True:
        if tty and prompt:
            process.stdout.write(_prompt(ct))
        prompt = True
        try:
            line = await process.stdin.readline()
        except asyncssh.TerminalSizeChanged as change:
            size = (change.width or 80, change.height or 24)
            prompt = False  # the line being typed goes on; no new prompt
            continue
        except (asyncssh.BreakReceived, asyncssh.SignalReceived):
            continue
        if not line:  # end of input (Ctrl-D)
            break
        if not ct.running or sim.containers.get(ct.vmid) is not ct:
            status = 255  # the container went away under the session
            break
        outcome = run_script(ct, line, sim.rng, term_size=size)
        if outcome.stdout:
            process.stdout.write(outcome.stdout)
        if outcome.stderr:
            errors.write(outcome.stderr)
        status = outcome.exit_status
        if outcome.exited:
            break
    process.exit(status)


class _Server(asyncssh.SSHServer):
    def __init__(self, username: str, authorized: asyncssh.SSHKey) -> None:
        self._username = username
        self._authorized = authorized

    def begin_auth(self, username: str) -> bool:
        return True  # authentication is always required

    def password_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return username == self._username and key.public_data == self._authorized.public_data


class SimSshServer:
    """The running SSH server; ``host_public_key`` is what clients pin."""

    def __init__(self, server: asyncssh.SSHAcceptor, host_key: asyncssh.SSHKey) -> None:
        self._server = server
        sockname = server.sockets[0].getsockname()
        self.host, self.port = sockname[0], sockname[1]
        self.host_public_key = host_key.export_public_key("openssh").decode("ascii").strip()

    async def close(self) -> None:
        self._server.close()
        await self._server.wait_closed()


async def start_ssh_server(
    sim: Simulator,
    *,
    authorized_key: str,
    host: str = "127.0.0.1",
    port: int = 0,
    username: str = "root",
    host_key_pem: str | None = None,
    node: str | None = None,
) -> SimSshServer:
    """Listen for ``pct exec`` over SSH; ``port=0`` picks a free port.

    ``authorized_key`` is the one OpenSSH public key allowed in. ``host_key_pem`` keeps the
    host key stable across runs (a new ed25519 key otherwise). ``node`` makes it behave as
    that node's sshd (only its containers); by default every container is reachable.
    """
    authorized = asyncssh.import_public_key(authorized_key)
    host_key = (
        asyncssh.import_private_key(host_key_pem)
        if host_key_pem
        else asyncssh.generate_private_key("ssh-ed25519")
    )

    async def handle(process: asyncssh.SSHServerProcess[str]) -> None:
        try:
            argv = shlex.split(process.command or "")
        except ValueError:
            argv = []
        vmid_word = shell_target(argv)
        if vmid_word is not None:
            await interactive_shell(sim, process, vmid_word, node)
            return
        outcome = pct_exec(sim, process.command or "", node)
        if outcome.stdout:
            process.stdout.write(outcome.stdout)
        if outcome.stderr:
            process.stderr.write(outcome.stderr)
        process.exit(outcome.exit_status)

    server = await asyncssh.create_server(
        lambda: _Server(username, authorized),
        host,
        port,
        server_host_keys=[host_key],
        process_factory=handle,
        encoding="utf-8",
    )
    return SimSshServer(server, host_key)
